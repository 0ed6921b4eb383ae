import t from 'tap'
import { createAgentRegistry } from '../../../agent/outputs/agent-metrics'
import { MonitorHarness } from '../support/monitor-harness'

// Table and column names may hold dots (guestfs takes any file name and any CSV label). The
// encrypted KPI revenue.v2 is kpi:"revenue.v2"; kpi:revenue.v2 is column v2 of table revenue.

const RAW = { monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }

t.test('kpi:"revenue.v2" delivers the encrypted KPI revenue.v2; kpi:revenue.v2 reads column v2 of revenue, and says what it missed once', async (t) => {
  const h = await MonitorHarness.create(t, [{ ...RAW, metric: 'kpi:"revenue.v2"' }, { ...RAW, metric: 'kpi:revenue.v2' }])
  h.ingest(h.sealedRow('revenue.v2', Buffer.from('sealed-1')), h.sealedRow('revenue.v2', Buffer.from('sealed-2')))
  h.ingest(h.row('revenue', { v2: 7 }))
  t.strictSame(h.of('kpi:"revenue.v2"', 'raw').map((d) => d.sealed), [Buffer.from('sealed-1').toString('base64'), Buffer.from('sealed-2').toString('base64')], 'every sealed row, opaque')
  t.strictSame(h.of('kpi:revenue.v2', 'raw').map((d) => d.samples), [[{ ts: Date.now(), value: 7 }]], 'the column of the unencrypted table')
  t.equal(h.logs.length, 1, 'said once, not per row')
  t.match(h.logs[0], /kpi:revenue\.v2 reads a column of an unencrypted KPI, but the guest has an encrypted KPI named "revenue\.v2": that one is kpi:"revenue\.v2"/)
})

t.test('dotted table and column names: the right column, and an encrypt: true column stays off /metrics', async (t) => {
  const h = await MonitorHarness.create(t, [
    { ...RAW, metric: 'kpi:"app.v2"."p.99"' },
    { ...RAW, metric: 'kpi:app."v2.p"', encrypt: true },
  ])
  h.ingest(h.row('app.v2', { 'p.99': 12, p: 1 }), h.row('app', { 'v2.p': 34 }))
  t.strictSame(h.of('kpi:"app.v2"."p.99"', 'raw').map((d) => d.samples![0].value), [12])
  t.equal(h.of('kpi:app."v2.p"', 'raw').length, 1)
  const text = await createAgentRegistry({ monitors: () => [h.monitor], consumers: () => [], store: h.store, storage: h.store.health, version: 'test' }).metrics()
  t.match(text, /fedvm_kpi\{domain="web-1",kpi="app\.v2",column="p\.99"\} 12/)
  t.notMatch(text, /column="v2\.p"/, 'the sealed column is hidden')
  t.notMatch(text, / 34\n/)
})
