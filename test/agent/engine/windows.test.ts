import t from 'tap'
import { MonitorHarness, T0 } from '../support/monitor-harness'

// Contract 3: a delivery interval > 0 collects the samples of a window and delivers them (raw) or
// one processed value when it closes; the window lives in the agent store, so a restart keeps it.
// The clock is node:test's mock, so every window holds exactly the samples the test put in it.

const METRIC = 'kpi:users.current_users'
const WINDOW = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 1000 }
const FUNCTIONS = ['min', 'max', 'mean', 'median'] as const

t.test('a known sequence gives exactly the expected values, window by window', async (t) => {
  const h = await MonitorHarness.create(t, [
    ...FUNCTIONS.map((fn) => ({ ...WINDOW, format: 'processed', function: fn })),
    { ...WINDOW, format: 'raw' },
  ])
  h.users(3, 1, 4, 1, 5, 9, 2, 6) // t = T0 … T0+7
  t.equal(h.delivered.length, 0, 'nothing before the window closes')
  h.tick(1000 - 8) // the window closes at T0 + 1000
  const expected = { min: 1, max: 9, mean: 3.875, median: 3.5 }
  for (const fn of FUNCTIONS) {
    t.strictSame(h.of(METRIC, 'processed', fn).map((d) => [d.value, d.from, d.to]), [[expected[fn], T0, T0 + 1000]], fn)
  }
  const [raw] = h.of(METRIC, 'raw')
  t.strictSame(raw.samples, [3, 1, 4, 1, 5, 9, 2, 6].map((value, i) => ({ ts: T0 + i, value })), 'raw: every sample, in order, with its ts')

  h.tick(500)
  h.users(10, 'text', null, 20, 30)
  h.tick(500 - 5)
  const second = { min: 10, max: 30, mean: 20, median: 20 }
  for (const fn of FUNCTIONS) t.strictSame(h.of(METRIC, 'processed', fn).map((d) => d.value), [expected[fn], second[fn]], `${fn}, second window (NULL and text skipped)`)
  t.strictSame(h.of(METRIC, 'raw')[1].samples!.map((s) => s.value), [10, 20, 30])

  const before = h.delivered.length
  h.tick(3000)
  t.equal(h.delivered.length, before, 'empty windows deliver nothing')
  h.users(8, 2, 6, 4)
  h.tick(1000)
  t.equal(h.of(METRIC, 'processed', 'median').at(-1)!.value, 5, 'even count median in a later window')
  t.equal(h.of(METRIC, 'processed', 'median').length, 3)
  t.strictSame(h.outbox(), h.delivered, 'the outbox holds exactly what was delivered')
})

t.test('a monitoring interval samples the latest value on its own clock, whatever the row rate', async (t) => {
  const h = await MonitorHarness.create(t, [
    { metric: METRIC, monitoringIntervalMs: 100, deliveryIntervalMs: 450, format: 'raw' },
    { metric: METRIC, monitoringIntervalMs: 100, deliveryIntervalMs: 450, format: 'processed', function: 'mean' },
  ])
  h.tick(50)
  h.users(10) // T0+50
  h.tick(199) // samples at T0+100 and T0+200: 10, 10
  h.users(40, 41) // T0+250, 251: only the latest counts
  h.tick(198) // samples at T0+300, T0+400: 41, 41; the window closes at T0+450
  const [raw] = h.of(METRIC, 'raw')
  t.strictSame(raw?.samples, [{ ts: T0 + 100, value: 10 }, { ts: T0 + 200, value: 10 }, { ts: T0 + 300, value: 41 }, { ts: T0 + 400, value: 41 }])
  t.strictSame(h.of(METRIC, 'processed', 'mean').map((d) => d.value), [25.5])
  h.tick(450)
  t.strictSame(h.of(METRIC, 'processed', 'mean').map((d) => d.value), [25.5, 41], 'no new row: the latest value is sampled again')
})

t.test('when on a window: the processed value must satisfy the predicate', async (t) => {
  const h = await MonitorHarness.create(t, [
    { ...WINDOW, format: 'processed', function: 'mean', when: { op: '>', value: 10 } },
    { ...WINDOW, format: 'raw', when: { op: '!=', value: 2 } },
  ])
  h.users(1, 2, 3)
  h.tick(1000 - 3)
  t.equal(h.of(METRIC, 'processed', 'mean').length, 0, 'mean 2: not delivered')
  t.strictSame(h.of(METRIC, 'raw').map((d) => d.samples!.map((s) => s.value)), [[1, 3]], 'raw: the samples that are not 2')
  h.users(10, 20)
  h.tick(1000 - 2)
  t.strictSame(h.of(METRIC, 'processed', 'mean').map((d) => d.value), [15], 'mean 15: delivered, from its own window only')
  h.users(2, 2)
  h.tick(1000 - 2)
  t.equal(h.of(METRIC, 'raw').length, 2, 'a raw window where nothing holds delivers nothing')
})

t.test('an open window survives a restart: the samples are in the agent store', async (t) => {
  const spec = { ...WINDOW, format: 'processed', function: 'median' }
  const h = await MonitorHarness.create(t, [spec])
  h.users(7, 1, 4)
  h.close() // the agent stops (or dies) before the window closes
  h.open()
  t.equal(h.store.cursor('web-1'), 3n, 'the cursor moved with the samples')
  h.configure([spec])
  h.users(9)
  h.tick(1000)
  t.strictSame(h.delivered.map((d) => d.value), [5.5], 'the window after the restart holds the samples from before it')
  t.strictSame(h.outbox().map((d) => d.value), [5.5])
})
