// bench/relay --source guestfs: the deliveries come from a real guestfs mount and a real `fedvm agent run`
// (its `http` consumer posting to a site's ingest), fed by writer processes (bench/agent-writer.ts) closing
// KPI files at a steady rate; latency is close() → the row in A's monitoring.db (polled read-only).
// The chain path posts to C's ingest for the VM C runs; the direct path to A's ingest for A's VM.
import Database from 'better-sqlite3'
import { execFile, spawn } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startGuestfsProcess } from '../guestfs/guestfs-process'
import type { Federation } from '../test/protocol/support/federation'
import { freePort } from '../test/support/free-port'

const run = promisify(execFile)
const FEDVM = join(__dirname, '..', 'packaging', 'bin', 'fedvm.js')
const WRITER = join(__dirname, 'agent-writer.js')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface GuestfsPath { name: string, siteId: string, vm: string }
type Percentiles = (values: number[]) => { p50: number, p99: number, max: number, n: number }

/** Rows of `vm` at A: (metric, sample value) → received_at. */
function arrivals (db: Database.Database, vm: string, since: number): Map<string, number> {
  const rows = db.prepare('SELECT "metric", "samples", "received_at" FROM "deliveries" WHERE "vm" = ? AND "received_at" >= ? AND "samples" IS NOT NULL').all(vm, since) as Array<{ metric: string, samples: string, received_at: number }>
  const found = new Map<string, number>()
  for (const row of rows) {
    for (const s of JSON.parse(row.samples) as Array<{ value: number }>) {
      const key = `${row.metric}/${s.value}`
      if (!found.has(key)) found.set(key, row.received_at)
    }
  }
  return found
}

/**
 * One run: a fresh guestfs + agent for `path`, `writers` writer processes each closing `rate / writers`
 * files/s for `seconds` (one KPI file each, kpi:wN.bench_value, raw, intervals 0), then waits until every
 * row is in A's store. Reports the rate the writers reached and close() → A's store percentiles.
 */
async function onePath (fed: Federation, root: string, storeFile: string, path: GuestfsPath, rate: number, seconds: number, writers: number, percentiles: Percentiles): Promise<Record<string, unknown>> {
  const dir = join(root, `${path.name}-${rate}`)
  await mkdir(dir, { recursive: true })
  const mountpoint = join(dir, 'kpi')
  const feed = `unix:${join(dir, 'feed.sock')}`
  const guestfs = await startGuestfsProcess(mountpoint, join(dir, 'kpi.db'), ['--feed', feed])
  const kpis = Array.from({ length: writers }, (_, w) => `w${w}`)
  await writeFile(join(dir, 'descriptor.json'), JSON.stringify({
    id: path.vm,
    primarySite: { id: 'site-a', publicKey: fed.site('site-a').keys.sealPublicKey },
    monitoring: kpis.map((k) => ({ metric: `kpi:${k}.bench_value`, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' })),
  }))
  const port = await freePort()
  const ingest = (fed.site(path.siteId).config.monitoring as { ingest: string }).ingest
  await writeFile(join(dir, 'agent.json'), JSON.stringify({
    listen: `127.0.0.1:${port}`,
    stateDir: join(dir, 'state'),
    vms: [{ name: path.vm, descriptor: join(dir, 'descriptor.json'), feed }],
    consumers: [{ type: 'http', url: `http://${ingest}/v1/deliveries` }],
  }))
  const agent = spawn(process.execPath, [FEDVM, 'agent', 'run', '--config', join(dir, 'agent.json')], { stdio: ['ignore', 'ignore', 'inherit'] })
  const db = new Database(storeFile, { readonly: true, fileMustExist: true })
  try {
    const deadline = Date.now() + 15_000
    while ((await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.ok !== true) {
      if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`${path.name}: the agent did not serve /metrics`)
      await sleep(50)
    }
    const since = Date.now()
    const perWriter = rate / writers
    const count = Math.round(perWriter * seconds)
    const outputs = await Promise.all(kpis.map((k) => run(process.execPath, [WRITER, 'fedvm', join(mountpoint, 'unencrypted', k), String(count), String(perWriter)], { maxBuffer: 64 << 20 })))
    const closedAt = new Map<string, number>()
    outputs.forEach((o, w) => (JSON.parse(o.stdout) as { closedAt: number[] }).closedAt.forEach((t, i) => closedAt.set(`kpi:${kpis[w]}.bench_value/${i + 1}`, t)))
    // The rate reached: first to last close() over all writers (not the writers' start-up).
    const times = [...closedAt.values()]
    const writeSeconds = (Math.max(...times) - Math.min(...times)) / 1000
    let found = arrivals(db, path.vm, since)
    const waitUntil = Date.now() + 120_000
    while ([...closedAt.keys()].some((k) => !found.has(k))) {
      if (Date.now() > waitUntil) throw new Error(`${path.name}: ${found.size} of ${closedAt.size} rows at A after 120 s`)
      await sleep(20)
      found = arrivals(db, path.vm, since)
    }
    const latencies = [...closedAt].map(([k, t]) => found.get(k)! - t)
    return { closesPerSecondAsked: rate, closesPerSecondReached: Math.round(closedAt.size / writeSeconds), writers, ...percentiles(latencies) }
  } finally {
    db.close()
    agent.kill('SIGTERM')
    if (agent.exitCode === null) await new Promise((resolve) => agent.once('exit', resolve))
    await guestfs.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

/** close() → A's store at each rate, chain and direct in the same run (alternating, so load drifts hit both). */
export async function guestfsLatency (fed: Federation, storeFile: string, paths: { chain: GuestfsPath, direct: GuestfsPath }, rates: number[], seconds: number, writers: number, percentiles: Percentiles): Promise<Record<string, unknown>> {
  const root = join(fed.root, 'guestfs-source')
  const out: Record<string, unknown> = {}
  for (const rate of rates) {
    out[String(rate)] = {
      chain: await onePath(fed, root, storeFile, paths.chain, rate, seconds, writers, percentiles),
      direct: await onePath(fed, root, storeFile, paths.direct, rate, seconds, writers, percentiles),
    }
  }
  return out
}
