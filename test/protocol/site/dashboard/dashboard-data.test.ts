import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PrimaryStore } from '../../../../protocol/primary/primary-store'
import { SealedOpener } from '../../../../protocol/primary/sealed-opener'
import { ActiveMigrations } from '../../../../protocol/roles/active-migrations'
import { IncomingTransfers } from '../../../../protocol/roles/incoming-transfers'
import { ProgressBoard } from '../../../../protocol/roles/migration-progress'
import { kpiSeries } from '../../../../protocol/site/dashboard/kpi-series'
import { runningMigrations } from '../../../../protocol/site/dashboard/running-migrations'

t.test('running migrations: the progress board first, then a pull, then the Controller\'s own', async (t) => {
  const progress = new ProgressBoard()
  const transfers = new IncomingTransfers()
  const active = new ActiveMigrations()
  progress.report('live-1', { path: 'live', phase: 'memory', totalBytes: 1000, remainingBytes: 250, rateBytesPerSecond: 100, etaMs: 2500, iteration: 2, at: 1 })
  transfers.progress.set('live-1', { bytes: 1, total: 2, reused: 0, rateBytesPerSecond: 1 })
  transfers.progress.set('cold-1', { bytes: 300, total: 1200, reused: 0, rateBytesPerSecond: 300 })
  active.enter('ctl-1')
  active.enter('live-1')
  active.enter('elsewhere')
  t.same(runningMigrations({ progress, transfers, active }, ['cold-1', 'ctl-1', 'live-1', 'idle-1']), [
    { vmId: 'cold-1', role: 'transfer', path: 'cold', phase: 'transfer', totalBytes: 1200, doneBytes: 300, rateBytesPerSecond: 300, etaMs: 3000 },
    { vmId: 'ctl-1', role: 'controller', phase: 'running' },
    { vmId: 'live-1', role: 'transfer', path: 'live', phase: 'memory', totalBytes: 1000, doneBytes: 750, rateBytesPerSecond: 100, etaMs: 2500 },
  ], 'one entry per VM; a Controller\'s VM only when the site lists it; a VM at rest has none')
})

t.test('KPI series: one per metric and selector at data time; sealed values withheld without the key', async (t) => {
  const keys = mkdtempSync(join(tmpdir(), 'fedvm-dash-keys-'))
  t.teardown(() => rmSync(keys, { recursive: true, force: true }))
  const db = new Database(':memory:')
  t.teardown(() => db.close())
  new PrimaryStore(db).insert([
    { id: 'm2', vm: 'vm1', metric: 'kpi:users.n', format: 'processed', function: 'max', from: 1000, to: 2000, value: 9 },
    { id: 'm1', vm: 'vm1', metric: 'kpi:users.n', format: 'processed', function: 'mean', from: 0, to: 1000, value: 5 },
    { id: 'r1', vm: 'vm1', metric: 'kpi:users.n', format: 'raw', from: 0, to: 1500, samples: [{ ts: 500, value: 4 }, { ts: 1500, value: 6 }] },
    { id: 's1', vm: 'vm1', metric: 'kpi:secret', format: 'raw', from: 0, to: 0, sealed: 'c2VhbGVk' },
    { id: 'o1', vm: 'vm2', metric: 'kpi:users.n', format: 'processed', function: 'mean', from: 0, to: 1000, value: 1 },
  ])
  const opener = await SealedOpener.load(keys)
  for (const openSealed of [false, true]) {
    t.same(await kpiSeries(db, 'vm1', { openSealed, opener }), [
      { metric: 'kpi:secret', selector: 'sealed', opened: 0, withheld: 1, points: [] },
      { metric: 'kpi:users.n', selector: 'max', opened: 0, withheld: 0, points: [[2000, 9]] },
      { metric: 'kpi:users.n', selector: 'mean', opened: 0, withheld: 0, points: [[1000, 5]] },
      { metric: 'kpi:users.n', selector: 'raw', opened: 0, withheld: 0, points: [[500, 4], [1500, 6]] },
    ], `in metric and selector order, only vm1's points; the sealed one withheld (openSealed ${openSealed}, no seal.key)`)
  }
  t.same(await kpiSeries(db, 'vm9', { openSealed: false, opener }), [], 'a VM without deliveries has no series')
})

t.test('KPI series: a chart holds the newest 2000 points', async (t) => {
  const keys = mkdtempSync(join(tmpdir(), 'fedvm-dash-keys-'))
  t.teardown(() => rmSync(keys, { recursive: true, force: true }))
  const db = new Database(':memory:')
  t.teardown(() => db.close())
  new PrimaryStore(db).insert(Array.from({ length: 15 }, (_, d) => ({
    id: `raw-${d}`, vm: 'vm1', metric: 'kpi:app.latency', format: 'raw' as const, from: d * 1000, to: d * 1000 + 999,
    samples: Array.from({ length: 1000 }, (_, i) => ({ ts: d * 1000 + i, value: i })),
  })))
  const [series] = await kpiSeries(db, 'vm1', { openSealed: false, opener: await SealedOpener.load(keys) })
  t.equal(series.points.length, 2000)
  t.same([series.points[0][0], series.points[1999][0]], [13_000, 14_999], 'the newest two deliveries\' samples, oldest first')
})
