import t from 'tap'
import { RuleEvaluator, type Point } from '../../../../protocol/primary/rules/rule-evaluator'
import { RulesSchema } from '../../../../protocol/primary/rules/rules-config'

// The forged-monitoring report: with "> 1000 for 0s" and a 300 s cooldown, data times of now+400 s
// and now+800 s fired three forced migrations within 17 s. The evaluator's wall clock is driven here.

const rules = RulesSchema.parse([{ name: 'busy', when: 'kpi:users.current_users > 1000 for 0s', action: 'forced-migration', cooldownMs: 300_000 }])

function point (ts: number, value = 5000): Point {
  return { vm: 'vm1', metric: 'kpi:users.current_users', selector: 'max', ts, value, sealed: false }
}

t.test('points dated beyond the clock skew never fire and do not hold back later points', async (t) => {
  let now = Date.parse('2026-12-04T12:00:00Z')
  const ev = new RuleEvaluator(rules, undefined, { now: () => now, maxClockSkewMs: 60_000 })
  t.same(ev.observe([point(now + 400_000), point(now + 800_000)]), [], 'data from the future is ignored')
  t.equal(ev.observe([point(now + 60_000)]).length, 1, 'a point at the edge of the skew is evaluated (and not held back by the ignored ones)')
})

t.test('the cooldown holds in wall time whatever data times say', async (t) => {
  let now = Date.parse('2026-12-04T12:00:00Z')
  const ev = new RuleEvaluator(rules, undefined, { now: () => now, maxClockSkewMs: 60_000 })
  t.equal(ev.observe([point(now)]).length, 1, 'the first breach fires')
  // The breach ends and comes back with data times spread past the cooldown, all within 17 s of wall time.
  let fired = 0
  for (let i = 1; i <= 17; i++) {
    now += 1000
    fired += ev.observe([point(now - 600_000 + i * 40_000, 10)]).length
    fired += ev.observe([point(now - 600_000 + i * 40_000 + 1, 5000)]).length
  }
  t.equal(fired, 0, 'no second firing within 300 s of wall time')
  now += 300_000
  t.equal(ev.observe([point(now, 10), point(now + 1, 5000)]).length, 1, 'once the cooldown passed in wall time and data time, it fires again')
})
