import t from 'tap'
import { MonitorHarness, T0 } from '../support/monitor-harness'

// Contract 3: monitoringIntervalMs 0 = every new KPI row is a sample; deliveryIntervalMs 0 = each
// sample is delivered as soon as it arrives. Raw carries `samples`, processed a `value`.

const METRIC = 'kpi:users.current_users'
const RAW = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }

t.test('raw, interval 0: one delivery per row with a number in the column; NULL, text, other columns and tables give none', async (t) => {
  const h = await MonitorHarness.create(t, [RAW])
  h.ingest(h.row('users', { current_users: 5, load: 0.5 }))
  h.tick(10)
  h.ingest(
    h.row('users', { current_users: null, load: 1 }), // NULL: skipped
    h.row('users', { current_users: 'many' }), // text: refused
    h.row('users', { load: 2 }), // the column is absent from this row
    h.row('other', { current_users: 99 }), // another KPI
  )
  h.tick(5)
  h.ingest(h.row('users', { load: 3, current_users: 7 })) // the column in another position
  const [first, second, ...more] = h.delivered
  t.equal(more.length, 0, 'exactly two deliveries')
  t.strictSame(first, { id: first.id, vm: 'web-1', metric: METRIC, format: 'raw', from: T0, to: T0, samples: [{ ts: T0, value: 5 }] })
  t.strictSame(second, { id: second.id, vm: 'web-1', metric: METRIC, format: 'raw', from: T0 + 15, to: T0 + 15, samples: [{ ts: T0 + 15, value: 7 }] })
  t.not(first.id, second.id, 'each delivery has its own id')
  t.strictSame(h.outbox(), h.delivered, 'both are in the durable outbox, as delivered')
})

t.test('processed, interval 0: each row is a window of one sample', async (t) => {
  const specs = (['min', 'max', 'mean', 'median'] as const).map((fn) => ({ ...RAW, format: 'processed', function: fn }))
  const h = await MonitorHarness.create(t, specs)
  h.users(4, 10.5, -3)
  for (const fn of ['min', 'max', 'mean', 'median']) {
    const got = h.of(METRIC, 'processed', fn)
    t.strictSame(got.map((d) => d.value), [4, 10.5, -3], fn)
    t.strictSame(got.map((d) => [d.from, d.to]), [[T0, T0], [T0 + 1, T0 + 1], [T0 + 2, T0 + 2]], `${fn}: from = to = the row's ts`)
    t.ok(got.every((d) => d.samples === undefined && d.sealed === undefined), `${fn}: a value, no samples, nothing sealed`)
  }
  t.equal(h.delivered.length, 12)
})

t.test('when: raw delivers the rows for which the predicate holds, processed the values', async (t) => {
  const h = await MonitorHarness.create(t, [
    { ...RAW, when: { op: '>', value: 5 } },
    { ...RAW, format: 'processed', function: 'max', when: { op: '<=', value: 5 } },
  ])
  h.users(5, 6, 5.5, 4, 100)
  t.strictSame(h.of(METRIC, 'raw').map((d) => d.samples!.map((s) => s.value)), [[6], [5.5], [100]])
  t.strictSame(h.of(METRIC, 'processed', 'max').map((d) => d.value), [5, 4])
})

t.test('every delivery is queued once for each consumer', async (t) => {
  const h = await MonitorHarness.create(t, [RAW], { consumers: ['a', 'b'] })
  h.users(1, 2)
  t.equal(h.delivered.length, 2)
  t.strictSame(h.outbox('a'), h.delivered)
  t.strictSame(h.outbox('b'), h.delivered)
  t.equal(h.store.queueLength('a'), 2)
})

t.test('ids are stable: the same rows give the same ids after a restart, so repeats can be dropped', async (t) => {
  const first = await MonitorHarness.create(t, [RAW, { ...RAW, format: 'processed', function: 'mean' }])
  first.users(1, 2, 3)
  const second = await MonitorHarness.create(t, [RAW, { ...RAW, format: 'processed', function: 'mean' }])
  second.users(1, 2, 3)
  t.equal(new Set(first.delivered.map((d) => d.id)).size, 6, 'six different ids')
  t.strictSame(second.delivered.map((d) => d.id), first.delivered.map((d) => d.id))
})

t.test('a specifier for another metric takes nothing from this KPI', async (t) => {
  const h = await MonitorHarness.create(t, [{ ...RAW, metric: 'kpi:users.load' }, { ...RAW, metric: 'cpu.time' }])
  h.users(1, 2)
  t.equal(h.delivered.length, 0)
  h.ingest(h.row('users', { current_users: 3, load: 0.25 }))
  t.strictSame(h.delivered.map((d) => [d.metric, d.samples]), [['kpi:users.load', [{ ts: T0 + 2, value: 0.25 }]]])
})
