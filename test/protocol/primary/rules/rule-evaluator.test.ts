import t from 'tap'
import { RuleEvaluator, type Point } from '../../../../protocol/primary/rules/rule-evaluator'
import { RulesSchema, type Rule } from '../../../../protocol/primary/rules/rules-config'

function rules (...list: Array<Record<string, unknown>>): Rule[] {
  return RulesSchema.parse(list)
}

function point (ts: number, value: number, more: Partial<Point> = {}): Point {
  return { vm: 'vm1', metric: 'kpi:users.current_users', selector: 'raw', ts, value, sealed: false, ...more }
}

t.test('fires once the comparison has held for exactly its duration (data time), not before', async (t) => {
  const ev = new RuleEvaluator(rules({ name: 'busy', when: 'kpi:users.current_users > 1000 for 30s' }))
  const t0 = Date.parse('2026-11-25T03:00:00Z')
  t.same(ev.observe([point(t0, 1500), point(t0 + 10_000, 1200), point(t0 + 20_000, 1001)]), [], 'held 20 s')
  t.same(ev.observe([point(t0 + 29_999, 5000)]), [], 'held 29.999 s: not yet')
  const fired = ev.observe([point(t0 + 30_000, 1100)])
  t.equal(fired.length, 1, 'held 30 s: fires')
  t.match(fired[0], { vm: 'vm1', since: t0, at: t0 + 30_000, rule: { name: 'busy' }, point: { value: 1100 } })
  t.same(ev.observe([point(t0 + 40_000, 1100), point(t0 + 400_000, 9999)]), [], 'one breach fires once, however long it lasts')
})

t.test('a point that does not hold breaks the run', async (t) => {
  const ev = new RuleEvaluator(rules({ name: 'busy', when: 'kpi:users.current_users > 1000 for 30s', cooldownMs: 0 }))
  t.same(ev.observe([point(0, 2000), point(20_000, 2000), point(25_000, 1000), point(26_000, 2000), point(50_000, 2000)]), [], '1000 is not > 1000: the run restarts at 26 s')
  t.match(ev.observe([point(56_000, 2000)]), [{ since: 26_000, at: 56_000 }])
  t.same(ev.observe([point(57_000, 10)]), [], 'breach over')
  t.match(ev.observe([point(60_000, 2000), point(90_000, 2000)]), [{ since: 60_000, at: 90_000 }], 'a new breach fires again (cooldown 0)')
})

t.test('cooldown (data time) after a firing', async (t) => {
  // The wall clock keeps pace with the data here (rule-clock.test.ts has them apart).
  let wall = 0
  const ev = new RuleEvaluator(rules({ name: 'busy', when: 'kpi:users.current_users > 1000', cooldownMs: 60_000 }), undefined, { now: () => wall, maxClockSkewMs: 60_000 })
  t.match(ev.observe([point(0, 2000)]), [{ at: 0 }], 'no duration: the first holding point fires')
  wall = 59_999
  t.same(ev.observe([point(1000, 0), point(2000, 2000), point(59_999, 2000)]), [], 'a second breach inside the cooldown does not fire')
  wall = 60_000
  t.match(ev.observe([point(60_000, 2000)]), [{ since: 2000, at: 60_000 }], 'it fires once the cooldown is over if it still holds')
})

t.test('rules select by metric, function and VM; each VM has its own run', async (t) => {
  const ev = new RuleEvaluator(rules(
    { name: 'median-high', when: 'median(cpu.load) >= 0.9 for 10s' },
    { name: 'vm2-only', when: 'cpu.load > 0.5', vm: 'vm2' },
  ))
  const p = (vm: string, selector: string, ts: number, value: number): Point => point(ts, value, { vm, metric: 'cpu.load', selector })
  t.ok(ev.reads('cpu.load'))
  t.notOk(ev.reads('kpi:users.current_users'))
  t.same(ev.observe([p('vm1', 'max', 0, 1), p('vm1', 'max', 20_000, 1)]), [], 'max deliveries are not what median(...) reads')
  t.same(ev.observe([p('vm1', 'median', 0, 0.95), p('vm3', 'median', 5000, 0.95)]), [])
  const fired = ev.observe([p('vm3', 'median', 12_000, 0.99), p('vm1', 'median', 10_000, 0.91)])
  t.same(fired.map((f) => [f.rule.name, f.vm, f.at]), [['median-high', 'vm1', 10_000]], 'vm3 held only 7 s; the batch is taken in data-time order')
  t.same(ev.observe([p('vm1', 'raw', 30_000, 0.7)]).map((f) => f.rule.name), [], 'vm2-only does not read vm1')
  t.same(ev.observe([p('vm2', 'raw', 30_000, 0.7)]).map((f) => [f.rule.name, f.vm]), [['vm2-only', 'vm2']])
})

t.test('a point older than one already evaluated is not evaluated (late data cannot rewrite a run)', async (t) => {
  const ev = new RuleEvaluator(rules({ name: 'busy', when: 'kpi:users.current_users > 1000 for 30s' }))
  ev.observe([point(0, 2000), point(20_000, 2000)])
  t.same(ev.observe([point(10_000, 5)]), [], 'late low point ignored')
  t.equal(ev.observe([point(30_000, 2000)]).length, 1, 'the run from 0 still fires at 30 s')
})

t.test('a firing remembered from before a restart keeps its cooldown', async (t) => {
  const list = rules({ name: 'busy', when: 'kpi:users.current_users > 1000 for 10s', cooldownMs: 60_000 })
  const ev = new RuleEvaluator(list, new Map([['busy', new Map([['vm1', 30_000]])]]))
  t.same(ev.observe([point(40_000, 2000), point(50_000, 2000), point(89_999, 2000)]), [], 'held, but within 60 s of the remembered firing')
  t.match(ev.observe([point(90_000, 2000)]), [{ since: 40_000, at: 90_000 }])
  t.match(ev.observe([point(0, 2000, { vm: 'vm2' }), point(10_000, 2000, { vm: 'vm2' })]), [{ vm: 'vm2', at: 10_000 }], 'other VMs are not held back')
})
