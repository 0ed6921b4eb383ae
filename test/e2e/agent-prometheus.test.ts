import t from 'tap'
import { seal, unseal } from '../../protocol/crypto/sealed-box'
import { AgentSetup, VM } from '../agent/support/agent-setup'
import { DeliveryReceiver } from '../agent/support/delivery-receiver'
import { waitFor } from '../support/wait'
import { PrometheusServer } from '../support/prometheus'

// End to end with real parts: guestfs mounted with its KPI feed, the agent process,
// a real Prometheus server (Debian `prometheus`) scraping the agent's /metrics every second, and
// a small HTTP receiver. An application writes a known sequence of KPI values; Prometheus's HTTP
// API must come to show them, and the receiver must get exactly the values the specifiers give.

const METRIC = 'kpi:users.current_users'
const AT_ONCE = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 0 }
const WINDOW = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 2500, format: 'processed' }
const SEQUENCE = [12, 57, 33, 81, 5, 64, 20, 49]
// sorted: 5 12 20 33 | 49 57 64 81
const EXPECTED = { median: (33 + 49) / 2, mean: 321 / 8, min: 5 }
const LAST = 99

t.test('an app writes KPIs; Prometheus scrapes them from the agent; the receiver gets exactly the processed values', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, {
    monitoring: [
      { ...AT_ONCE, format: 'raw' },
      { ...AT_ONCE, format: 'processed', function: 'max', when: { op: '>=', value: 50 } },
      { ...WINDOW, function: 'median' },
      { ...WINDOW, function: 'mean' },
      { ...WINDOW, function: 'min' },
      { metric: 'kpi:secret', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
    ],
    consumers: [receiver.url],
  })
  const prometheus = await PrometheusServer.start(t, [`127.0.0.1:${setup.port}`])
  const value = async (promql: string) => {
    const result = await prometheus.query(promql)
    if (result.length > 1) throw new Error(`${promql}: ${result.length} series`)
    return result[0]?.value
  }
  const kpi = `fedvm_kpi{domain="${VM}",kpi="users",column="current_users"}`
  const processed = (fn: string) => `fedvm_kpi_processed{domain="${VM}",metric="${METRIC}",function="${fn}"}`
  const deliveredBy = (fn?: string) => receiver.unique().filter((d) => d.metric === METRIC && d.function === fn)

  // The sequence is committed while the agent is down: it catches up from its cursor at start, so
  // the first delivery window holds exactly the whole sequence.
  for (const n of SEQUENCE) t.equal(await setup.write('users', `current_users,load\n${n},0.5\n`), 'ok')
  const secret = await seal(Buffer.from('revenue,1234.5\n'), setup.keys.publicKey)
  t.equal(await setup.mount!.app.outcome({ op: 'write', path: setup.mount!.path('encrypted', 'secret'), data: { base64: secret.toString('base64') } }), 'ok')
  t.equal(await setup.write('users', 'current_users,load\n1,2,3\n'), 'close EINVAL', 'a refused write (more values than labels)')
  const agent = await setup.startAgent()

  await waitFor('the raw sequence and the first windows at the receiver', () => deliveredBy('min').length === 1 && deliveredBy(undefined).length === SEQUENCE.length, 20_000)
  t.strictSame(deliveredBy(undefined).map((d) => d.samples!.map((s) => s.value)), SEQUENCE.map((n) => [n]), 'raw: every value, in order, one delivery each')
  t.strictSame(deliveredBy('max').map((d) => d.value), [57, 81, 64], 'max with when >= 50: exactly the values that qualify')
  for (const fn of ['median', 'mean', 'min'] as const) {
    t.strictSame(deliveredBy(fn).map((d) => d.value), [EXPECTED[fn]], `${fn} of the sequence: ${EXPECTED[fn]}`)
  }
  const [sealed] = receiver.unique().filter((d) => d.metric === 'kpi:secret')
  t.equal(sealed?.sealed, secret.toString('base64'), 'the encrypted KPI arrives as the very sealed bytes the app wrote')
  t.equal((await unseal(Buffer.from(sealed.sealed!, 'base64'), setup.keys)).toString(), 'revenue,1234.5\n', 'which the primary site opens')

  await waitFor('Prometheus to have scraped the sequence', async () =>
    (await value(kpi)) === SEQUENCE.at(-1) && (await value(processed('median'))) === EXPECTED.median, 20_000)
  t.equal(await value(`up{job="fedvm-agent"}`), 1, 'the agent is a healthy target')
  t.equal(await value(kpi), 49, 'fedvm_kpi: the latest value of the column')
  t.equal(await value(`fedvm_kpi{domain="${VM}",kpi="users",column="load"}`), 0.5, 'and of the other column')
  t.equal(await value(`fedvm_kpi_writes_total{domain="${VM}",kpi="users"}`), SEQUENCE.length)
  t.equal(await value(`fedvm_kpi_writes_total{domain="${VM}",kpi="secret"}`), 1, 'the encrypted KPI is counted')
  t.strictSame(await prometheus.query(`fedvm_kpi{kpi="secret"}`), [], 'but has no value series')
  t.equal(await value(processed('max')), 64)
  t.equal(await value(processed('mean')), EXPECTED.mean)
  t.equal(await value(processed('min')), EXPECTED.min)
  t.equal(await value(`fedvm_delivery_queue_length{consumer="${receiver.url}"}`), 0)
  t.equal(await value(`fedvm_feed_up{domain="${VM}"}`), 1)
  t.ok((await value(`fedvm_kpi_last_write_timestamp_seconds{domain="${VM}",kpi="users"}`))! > Date.now() / 1000 - 120, 'the last write\'s time, in seconds')
  t.equal((await prometheus.query('fedvm_build_info')).length, 1)
  t.equal(await value(`fedvm_kpi_parse_errors_total{domain="${VM}"}`), 1, 'the refused write, as the guest counted it')
  t.strictSame(await prometheus.query('{__name__=~"fedvm_.*"} == 1234.5'), [], 'the sealed value appears nowhere in the clear')

  // One more value with everything running: it travels through at once, and a window of its own.
  t.equal(await setup.write('users', `current_users,load\n${LAST},0.25\n`), 'ok')
  await waitFor('Prometheus to show the new value and its window', async () =>
    (await value(kpi)) === LAST && (await value(processed('median'))) === LAST && (await value(processed('min'))) === LAST, 20_000)
  t.equal(await value(`fedvm_kpi_writes_total{domain="${VM}",kpi="users"}`), SEQUENCE.length + 1)
  t.equal(await value(processed('max')), LAST)
  t.strictSame(deliveredBy(undefined).map((d) => d.samples![0].value), [...SEQUENCE, LAST])
  t.strictSame(deliveredBy('max').map((d) => d.value), [57, 81, 64, LAST])
  for (const fn of ['median', 'mean', 'min'] as const) {
    t.strictSame(deliveredBy(fn).map((d) => d.value), [EXPECTED[fn], LAST], `${fn}: one window per burst, empty windows deliver nothing`)
  }
  t.equal(receiver.all().length, receiver.unique().length, 'no repeats were needed')
  t.ok(agent.running)
})
