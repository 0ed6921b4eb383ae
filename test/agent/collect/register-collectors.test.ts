import t from 'tap'
import { Registry, register as globalRegistry } from 'prom-client'
import { registerCollectors } from '../../../agent/collect'
import type { Collector, Sample } from '../../../host/collector'
import { parsePromText } from '../../support/vm/metrics-http'

const gauge = (name: string, value: number, labels: Record<string, string> = {}): Sample => ({ name, help: `${name} help`, type: 'gauge', labels, value })

function collector (name: string, collect: (signal: AbortSignal) => Promise<Sample[]>, families?: Collector['families']): Collector & { calls: number } {
  const c = { name, families, calls: 0, collect: async (s: AbortSignal) => { c.calls++; return await collect(s) } }
  return c
}

const values = (text: string, name: string): Array<[Record<string, string>, number]> =>
  parsePromText(text).filter(s => s.name === name).map(s => [s.labels, s.value])

t.test('collectors run once per scrape, into the given registry only', async t => {
  const ok = collector('ok', async () => [gauge('demo_value', 7, { domain: 'a' })], [{ name: 'demo_value', help: 'h', type: 'gauge' }])
  const registry = new Registry()
  registerCollectors(registry, [ok])
  const text = await registry.metrics()
  t.same(values(text, 'demo_value'), [[{ domain: 'a' }, 7]])
  t.equal(ok.calls, 1, 'one collection for all families of a scrape')
  t.same(values(text, 'fedvm_collector_success'), [[{ collector: 'ok' }, 1]])
  const duration = values(text, 'fedvm_collector_duration_seconds')
  t.equal(duration.length, 1)
  t.ok(duration[0][1] >= 0 && duration[0][1] < 1, 'duration in seconds')
  t.notOk((await globalRegistry.metrics()).includes('fedvm_collector'), 'nothing in the global registry')
  await registry.metrics()
  t.equal(ok.calls, 2, 'the next scrape collects again (values are pulled, never cached)')
})

t.test('a failing or late collector is logged and leaves the others intact', async t => {
  const logs: string[] = []
  const good = collector('good', async () => [gauge('good_value', 1)], [{ name: 'good_value', help: 'h', type: 'gauge' }])
  const bad = collector('bad', async () => { throw new Error('boom') }, [{ name: 'bad_value', help: 'h', type: 'gauge' }])
  let ignoredAbort = false
  const slow = collector('slow', async signal => await new Promise<Sample[]>(resolve => {
    signal.addEventListener('abort', () => { ignoredAbort = true })
    setTimeout(() => resolve([gauge('slow_value', 1)]), 2000)
  }), [{ name: 'slow_value', help: 'h', type: 'gauge' }])
  const registry = new Registry()
  registerCollectors(registry, [good, bad, slow], { deadlineMs: 50, log: m => logs.push(m) })
  const begin = Date.now()
  const text = await registry.metrics()
  t.ok(Date.now() - begin < 1000, 'the scrape ends at the deadline, not when the slow collector does (2 s)')
  t.ok(ignoredAbort, 'the slow collector was told through its signal')
  t.same(values(text, 'good_value'), [[{}, 1]])
  t.same(values(text, 'bad_value'), [])
  t.same(values(text, 'slow_value'), [])
  t.same(values(text, 'fedvm_collector_success').map(([l, v]) => [l.collector, v]).sort(), [['bad', 0], ['good', 1], ['slow', 0]])
  t.ok(logs.some(l => /collector bad failed: boom \[COLLECTOR_FAILED\]/.test(l)), 'failure logged with its code')
  t.ok(logs.some(l => /collector slow missed its 50 ms deadline \[COLLECTOR_DEADLINE\]/.test(l)), 'deadline logged')
  const again = await registry.metrics()
  t.same(values(again, 'fedvm_collector_success').find(([l]) => l.collector === 'slow')?.[1], 0, 'still busy: not started twice')
  t.ok(logs.some(l => /COLLECTOR_BUSY/.test(l)), 'busy logged')
  t.equal(slow.calls, 1, 'never called twice at once')
})

t.test('an undeclared family appears from the next scrape', async t => {
  const c = collector('dyn', async () => [gauge('late_family', 3)])
  const registry = new Registry()
  registerCollectors(registry, [c], { log: () => {} })
  t.same(values(await registry.metrics(), 'late_family'), [])
  t.same(values(await registry.metrics(), 'late_family'), [[{}, 3]])
})

t.test('counters keep _total and work in OpenMetrics too', async t => {
  const c = collector('c', async () => [{ name: 'x_bytes_total', help: 'h', type: 'counter', labels: { d: 'a' }, value: 5 }], [{ name: 'x_bytes_total', help: 'h', type: 'counter' }])
  const prom = new Registry()
  registerCollectors(prom, [c])
  t.match(await prom.metrics(), /# TYPE x_bytes_total counter\nx_bytes_total\{d="a"\} 5/)
  const om = new Registry()
  om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
  registerCollectors(om, [c])
  t.match(await om.metrics(), /# TYPE x_bytes counter\nx_bytes_total\{d="a"\} 5/)
})

t.test('bad options are refused with the bad value named', async t => {
  t.throws(() => registerCollectors(new Registry(), [], { deadlineMs: 0 }), /deadlineMs must be a positive number of milliseconds, got 0/)
  const c = collector('same', async () => [])
  t.throws(() => registerCollectors(new Registry(), [c, c]), /two collectors are named "same"/)
})
