import t from 'tap'
import { MonitorHarness, T0 } from '../support/monitor-harness'

// "a changed specifier takes effect at once (the paper's Control interface)".
// configure() is what SIGHUP and the Control interface call with the new descriptor.

const METRIC = 'kpi:users.current_users'
const RAW = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const MEDIAN = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed', function: 'median' }

t.test('a changed predicate applies to the very next row', async (t) => {
  const h = await MonitorHarness.create(t, [{ ...RAW, when: { op: '>', value: 100 } }])
  h.users(50)
  t.equal(h.delivered.length, 0)
  h.configure([{ ...RAW, when: { op: '<', value: 100 } }])
  h.users(51, 150)
  t.strictSame(h.delivered.map((d) => d.samples![0].value), [51])
})

t.test('a changed window specifier: the old window is delivered at once, the new one starts empty', async (t) => {
  const h = await MonitorHarness.create(t, [MEDIAN])
  h.users(1, 2, 3)
  h.tick(497) // T0 + 500
  h.configure([{ ...MEDIAN, function: 'max' }])
  t.strictSame(h.delivered.map((d) => [d.function, d.value, d.from, d.to]), [['median', 2, T0, T0 + 500]], 'the median of the old window, delivered on the change')
  h.users(7, 9)
  h.tick(1000 - 2)
  t.strictSame(h.delivered.map((d) => [d.function, d.value]), [['median', 2], ['max', 9]], 'the max of the samples since the change only')
  h.tick(5000)
  t.equal(h.delivered.length, 2, 'the old specifier\'s timer is gone')
})

t.test('re-applying the same descriptor keeps the open window', async (t) => {
  const h = await MonitorHarness.create(t, [MEDIAN])
  h.users(4, 6)
  h.configure([MEDIAN])
  t.equal(h.delivered.length, 0, 'nothing delivered early')
  h.users(100)
  h.tick(1000)
  t.strictSame(h.delivered.map((d) => d.value), [6], 'one window over all three samples')
})

t.test('a removed specifier delivers its window and then nothing more; an added one starts at once', async (t) => {
  const h = await MonitorHarness.create(t, [{ ...MEDIAN, format: 'raw', function: undefined }])
  h.users(5, 6)
  h.configure([{ ...RAW, format: 'processed', function: 'min' }])
  t.strictSame(h.delivered.map((d) => d.samples?.map((s) => s.value)), [[5, 6]], 'the removed raw window, delivered on removal')
  h.users(8)
  h.tick(3000)
  t.strictSame(h.delivered.slice(1).map((d) => [d.format, d.function, d.value]), [['processed', 'min', 8]])
})

t.test('turning encrypt on hides the column from /metrics and seals the next delivery', async (t) => {
  const h = await MonitorHarness.create(t, [RAW])
  h.users(11)
  t.equal(h.monitor.view.kpis.get('users')!.values.get('current_users'), 11)
  h.configure([{ ...RAW, encrypt: true }])
  t.equal(h.monitor.view.kpis.get('users')!.values.has('current_users'), false, 'the clear value leaves /metrics at once')
  h.users(12)
  const last = h.delivered.at(-1)!
  t.ok(last.sealed && last.samples === undefined, 'sealed')
})
