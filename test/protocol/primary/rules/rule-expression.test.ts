import t from 'tap'
import { parseSiteConfig } from '../../../../protocol/site/config'
import { ConfigError } from '../../../../protocol/errors'
import { parseRuleExpression } from '../../../../protocol/primary/rules/rule-expression'
import { RuleExpressionError } from '../../../../protocol/primary/rules/errors'

t.test('rule expressions', async (t) => {
  t.same(parseRuleExpression('kpi:users.current_users > 1000 for 30s'), { metric: 'kpi:users.current_users', comparison: { op: '>', value: 1000 }, forMs: 30_000 })
  t.same(parseRuleExpression('cpu.time>=0.5'), { metric: 'cpu.time', comparison: { op: '>=', value: 0.5 }, forMs: 0 }, 'no spaces, no duration')
  t.same(parseRuleExpression('median(kpi:q.depth) != -2.5e3 for 1.5m'), { metric: 'kpi:q.depth', selector: 'median', comparison: { op: '!=', value: -2500 }, forMs: 90_000 })
  t.same(parseRuleExpression('raw( kpi:a.b ) < 1 for 250ms'), { metric: 'kpi:a.b', selector: 'raw', comparison: { op: '<', value: 1 }, forMs: 250 })
  t.same(parseRuleExpression('"kpi:odd > name.col" == 3 for 2 h'), { metric: 'kpi:odd > name.col', comparison: { op: '==', value: 3 }, forMs: 7_200_000 }, 'quoted metric names may hold anything')
  for (const [text, why] of [
    ['kpi:users.current_users > 1000 for 30', /needs a unit/],
    ['kpi:users.current_users > lots', /is not METRIC OP NUMBER/],
    ['kpi:users.current_users => 5', /is not METRIC OP NUMBER/],
    ['sum(kpi:a.b) > 1', /sum\(…\) is not one of min, max, mean, median, raw/],
    ['> 5', /is not METRIC OP NUMBER/],
    ['kpi:a.b > 5 for 3 fortnights', /needs a unit/],
    ['kpi:a.b > 5 during 3s', /is not METRIC OP NUMBER/],
  ] as const) {
    t.throws(() => parseRuleExpression(text), { name: 'RuleExpressionError', message: why }, text)
  }
  t.ok(new RuleExpressionError('x') instanceof Error)
})

t.test('monitoring.rules in the site config: defaults, and a bad rule names its field', async (t) => {
  const base = {
    id: 'site-a', listen: '127.0.0.1:9000', keys: 'keys', stateDir: 'state', proxies: [{ listen: '127.0.0.1:9001' }],
  }
  const config = parseSiteConfig({ ...base, monitoring: { metricsListen: '127.0.0.1:9100', rules: [{ name: 'busy', when: 'kpi:users.current_users > 1000 for 30s' }] } }, '/etc/fedvm/site.json')
  t.match(config.monitoring, { metricsListen: '127.0.0.1:9100', metricsSealed: false })
  t.match(config.monitoring.rules, [{ name: 'busy', action: 'log', cooldownMs: 300_000, when: { text: 'kpi:users.current_users > 1000 for 30s', metric: 'kpi:users.current_users', forMs: 30_000 } }])
  t.same(parseSiteConfig(base, '/etc/fedvm/site.json').monitoring.rules, [], 'no rules by default')

  const bad = (rules: unknown, field: string, message: RegExp): void => {
    let error: unknown
    try {
      parseSiteConfig({ ...base, monitoring: { rules } }, '/etc/fedvm/site.json')
    } catch (err) {
      error = err
    }
    t.ok(error instanceof ConfigError, `${field}: a ConfigError`)
    t.equal((error as ConfigError).field, field)
    t.match((error as ConfigError).message, message)
  }
  bad([{ name: 'busy', when: 'kpi:users.current_users > 1000 for 30' }], 'monitoring.rules[0].when', /^monitoring\.rules\[0\]\.when: .*needs a unit/)
  bad([{ name: 'a', when: 'x > 1' }, { name: 'b', when: 'x >> 1' }], 'monitoring.rules[1].when', /is not METRIC OP NUMBER/)
  bad([{ name: 'a', when: 'x > 1', action: 'reboot' }], 'monitoring.rules[0].action', /log|forced-migration/)
  bad([{ name: 'a', when: 'x > 1', cooldownMs: -1 }], 'monitoring.rules[0].cooldownMs', /./)
  bad([{ name: 'a', when: 'x > 1', vm: '../etc' }], 'monitoring.rules[0].vm', /VM id/)
  bad([{ name: 'a', when: 'x > 1', colour: 'red' }], 'monitoring.rules[0].colour', /not a known setting/)
  bad([{ when: 'x > 1' }], 'monitoring.rules[0].name', /./)
  bad([{ name: 'a', when: 'x > 1' }, { name: 'a', when: 'y > 1' }], 'monitoring.rules[1].name', /"a" appears twice/)
  bad({ name: 'a' }, 'monitoring.rules', /./)
  t.throws(() => parseSiteConfig({ ...base, monitoring: { metricsListen: 'everywhere' } }, '/x/site.json'), { name: 'ConfigError', message: /^monitoring\.metricsListen: / })
  t.throws(() => parseSiteConfig({ ...base, monitoring: { metricsSealed: 'yes' } }, '/x/site.json'), { name: 'ConfigError', message: /^monitoring\.metricsSealed: / })
})
