import t from 'tap'
import { seal, unseal } from '../../../protocol/crypto/sealed-box'
import { createAgentRegistry } from '../../../agent/outputs/agent-metrics'
import type { AgentDelivery as Delivery } from '../../../protocol/relay/delivery'
import { MonitorHarness, T0 } from '../support/monitor-harness'

// Contract 3: `encrypt` seals the delivered payload for the primary site's key. Contract 4 and
// encrypted KPIs (encrypted/, `kpi:TABLE`) pass through opaque: the host can count and
// time them, never read them.

const METRIC = 'kpi:users.current_users'

async function open (h: MonitorHarness, d: Delivery): Promise<unknown> {
  return JSON.parse((await unseal(Buffer.from(d.sealed!, 'base64'), h.keys)).toString('utf8'))
}

async function metricsText (h: MonitorHarness): Promise<string> {
  const registry = createAgentRegistry({ monitors: () => [h.monitor], consumers: () => [], store: h.store, storage: h.store.health, version: 'test' })
  return registry.metrics()
}

t.test('encrypt: true seals the payload for the primary site; it opens to exactly the raw samples or processed value', async (t) => {
  const h = await MonitorHarness.create(t, [
    { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw', encrypt: true },
    { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed', function: 'median', encrypt: true },
  ])
  h.ingest(h.row('users', { current_users: 987654.321, load: 0.75 }))
  h.tick(1)
  h.ingest(h.row('users', { current_users: 123456.5, load: 0.5 }))
  h.tick(999)

  const raw = h.of(METRIC, 'raw')
  t.equal(raw.length, 2)
  t.strictSame(await open(h, raw[0]), { samples: [{ ts: T0, value: 987654.321 }] })
  t.strictSame(await open(h, raw[1]), { samples: [{ ts: T0 + 1, value: 123456.5 }] })
  const processed = h.of(METRIC, 'processed', 'median')
  t.equal(processed.length, 1)
  t.strictSame(await open(h, processed[0]), { function: 'median', value: (987654.321 + 123456.5) / 2 })
  for (const d of [...raw, ...processed]) {
    t.equal(d.value, undefined, 'no value in the clear')
    t.equal(d.samples, undefined, 'no samples in the clear')
    t.match(d, { vm: 'web-1', metric: METRIC, sealed: /^[A-Za-z0-9+/]+=*$/ })
  }

  const everything = JSON.stringify(h.delivered) + JSON.stringify(h.store.due('receiver', Number.MAX_SAFE_INTEGER, 1000))
  for (const plaintext of ['987654', '123456', '555555']) t.notOk(everything.includes(plaintext), `${plaintext}… appears nowhere in the deliveries or the outbox`)

  const metrics = await metricsText(h)
  t.notOk(/987654|123456|555555/.test(metrics), 'nor on /metrics')
  t.notOk(metrics.includes('column="current_users"'), 'the encrypted column has no fedvm_kpi series')
  t.match(metrics, /fedvm_kpi\{domain="web-1",kpi="users",column="load"\} 0\.5/, 'other columns of the KPI do')
  t.notOk(/fedvm_kpi_processed\{/.test(metrics), 'no processed value in the clear')
})

t.test('an encrypted KPI passes through opaque: the very sealed bytes, one delivery per row, counted and timed', async (t) => {
  const h = await MonitorHarness.create(t, [
    { metric: 'kpi:secret', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw', encrypt: true },
    { metric: 'kpi:secret', monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'raw' },
  ])
  const sealedA = await seal(Buffer.from('revenue,42\n'), h.keys.publicKey)
  const sealedB = await seal(Buffer.from('revenue,43\n'), h.keys.publicKey)
  const rowA = h.sealedRow('secret', sealedA)
  h.ingest(rowA)
  h.tick(5)
  const rowB = h.sealedRow('secret', sealedB)
  h.ingest(rowB)
  h.ingest(h.row('users', { current_users: 1 })) // an unencrypted KPI is not kpi:secret's business
  h.tick(995)

  const immediate = h.delivered.slice(0, 2)
  t.strictSame(immediate.map((d) => d.sealed), [rowA.sealed, rowB.sealed], 'interval 0: each row at once, sealed exactly as the guest sent it (not sealed twice)')
  const windowed = h.delivered.slice(2)
  t.equal(windowed.length, 2, 'a window of two sealed rows: two deliveries (each is its own sealed box)')
  t.strictSame(windowed.map((d) => [d.sealed, d.from, d.to]), [[rowA.sealed, T0, T0], [rowB.sealed, T0 + 5, T0 + 5]])
  t.not(windowed[0].id, windowed[1].id)
  for (const d of h.delivered) {
    t.equal(d.format, 'raw')
    t.equal(d.samples, undefined)
    t.equal(d.value, undefined)
  }
  t.equal((await unseal(Buffer.from(windowed[1].sealed!, 'base64'), h.keys)).toString(), 'revenue,43\n', 'the primary site opens it')

  const state = h.monitor.view.kpis.get('secret')!
  t.strictSame({ writes: state.writes, lastWriteMs: state.lastWriteMs, encrypted: state.encrypted, values: state.values.size }, { writes: 2, lastWriteMs: T0 + 5, encrypted: true, values: 0 })
  const metrics = await metricsText(h)
  t.match(metrics, /fedvm_kpi_writes_total\{domain="web-1",kpi="secret"\} 2/, 'counted')
  t.match(metrics, new RegExp(`fedvm_kpi_last_write_timestamp_seconds\\{domain="web-1",kpi="secret"\\} ${(T0 + 5) / 1000}`), 'timed')
  t.notOk(/fedvm_kpi\{[^}]*kpi="secret"/.test(metrics), 'never read: no value series')
})
