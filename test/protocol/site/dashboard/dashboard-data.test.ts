import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PrimaryStore } from '../../../../protocol/primary/primary-store'
import { SealedOpener } from '../../../../protocol/primary/sealed-opener'
import { kpiSeries } from '../../../../protocol/site/dashboard/kpi-series'
import { runningMigrations } from '../../../../protocol/site/dashboard/running-migrations'

t.test('running migrations: one per VM; figures of data moving here first, then what the Controller learnt, then live arrivals', async (t) => {
  const live = { path: 'live' as const, phase: 'memory' as const, totalBytes: 1000, remainingBytes: 250, rateBytesPerSecond: 100, etaMs: 2500, iteration: 2, at: 1 }
  const cold = { path: 'cold' as const, phase: 'transfer' as const, totalBytes: 1200, remainingBytes: 900, rateBytesPerSecond: 300, etaMs: 3000, at: 1 }
  const reported = { ...cold, remainingBytes: 1000, at: 0 }
  t.same(runningMigrations({
    migrations: [{ vmId: 'here-1', since: 0, progress: reported }, { vmId: 'partner-1', since: 0, progress: live }, { vmId: 'waiting-1', since: 0, progress: null }],
    transfers: [{ vmId: 'here-1', ...cold }, { vmId: 'for-another-1', ...cold }],
    arrivals: [
      { vmId: 'arriving-1', since: 0, phase: 'receiving', receivedBytes: { memory: 100, disks: 400 }, rateBytesPerSecond: 50, at: 1 },
      { vmId: 'here-1', since: 0, phase: 'finishing', receivedBytes: { memory: 1, disks: 1 }, rateBytesPerSecond: 0, at: 1 },
    ],
  }), [
    { vmId: 'arriving-1', role: 'arrival', path: 'live', phase: 'receiving', doneBytes: 500, rateBytesPerSecond: 50 },
    { vmId: 'for-another-1', role: 'transfer', path: 'cold', phase: 'transfer', totalBytes: 1200, doneBytes: 300, rateBytesPerSecond: 300, etaMs: 3000 },
    { vmId: 'here-1', role: 'controller', path: 'cold', phase: 'transfer', totalBytes: 1200, doneBytes: 300, rateBytesPerSecond: 300, etaMs: 3000 },
    { vmId: 'partner-1', role: 'controller', path: 'live', phase: 'memory', totalBytes: 1000, doneBytes: 750, rateBytesPerSecond: 100, etaMs: 2500, iteration: 2 },
    { vmId: 'waiting-1', role: 'controller', phase: 'waiting for figures' },
  ])
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
