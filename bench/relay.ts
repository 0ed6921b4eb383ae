// bench/relay: monitoring deliveries through the relay chain C → B → A (3 hops: C's ingest, the signed
// hop C → B, the signed hop B → A into A's primary store) against a direct single hop (A's own ingest
// into its store) in the same run: deliveries/s with the ingest kept busy, and the latency from a
// delivery's creation at the injector to its row in A's store at a steady rate (delivery interval 0:
// every delivery sent as soon as made, batched only by the injector's 5 ms linger, as the agent does).
// Usage: node dist/bench/relay.js [--transport http|nats] [--deliveries 20000] [--rate 5000] [--seconds 5] [--linger 5]
//        (--transport picks how deliveries reach C's ingest: POSTs, or the NATS bus (bench/relay-nats.ts);
//        the direct hop is always a POST; writes bench/results/relay.json, or relay-nats.json)
//        node dist/bench/relay.js --source guestfs [--rates 1000,5000] [--seconds 5] [--writers 2]
//        (deliveries from a guestfs mount + `fedvm agent run` at C, latency close() → A's store, against
//        the agent posting straight to A's ingest (bench/relay-guestfs.ts); writes relay-guestfs.json)
import Database from 'better-sqlite3'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Delivery } from '../protocol/relay/delivery'
import { Federation, type TestSite } from '../test/protocol/support/federation'
import { makeVmDir } from '../test/protocol/support/vm-files'
import { guestfsLatency } from './relay-guestfs'
import { natsTransport } from './relay-nats'

const REPO = join(__dirname, '..', '..')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.timeOrigin + performance.now()

/** How deliveries reach a site's ingest (the agent's side of it). */
export interface Injector {
  /** Resolves once the site accepted (stored) the batch. */
  send (deliveries: Delivery[]): Promise<void>
  close (): Promise<void>
}

/** A transport: what each site's `monitoring` config needs, and an injector for a site. */
export interface Transport {
  name: string
  siteMonitoring (siteId: string): Record<string, unknown>
  injector (site: TestSite): Promise<Injector>
  /** The transport's own processes (a broker: name → pid), whose CPU per delivery is reported with the sites'. */
  processes?: () => Record<string, number>
  close (): Promise<void>
}

/** The agent's `http` consumer path: JSON POSTs to the site's local ingest, keep-alive. */
async function httpTransport (): Promise<Transport> {
  return {
    name: 'http',
    siteMonitoring: () => ({ ingest: true }),
    injector: async (site) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 8 })
      const url = `http://${(site.config.monitoring as { ingest: string }).ingest}/v1/deliveries`
      return {
        send: (deliveries) => new Promise<void>((resolve, reject) => {
          const body = Buffer.from(JSON.stringify(deliveries))
          const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString()}`))))
          })
          req.on('error', reject)
          req.end(body)
        }),
        close: async () => agent.destroy(),
      }
    },
    close: async () => {},
  }
}

const TRANSPORTS: Record<string, () => Promise<Transport>> = { http: httpTransport, nats: natsTransport }

/** CPU seconds (user + system) a process used so far. */
async function cpuSeconds (pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Runs a phase and adds each site's CPU per delivery (µs): what the load on this shared machine does not change. */
async function withCpu<T extends object> (fed: Federation, deliveries: number, phase: () => Promise<T>, others: Record<string, number> = {}): Promise<T & { cpuMicrosPerDelivery: Record<string, number> }> {
  const pids = new Map([...[...fed.sites.keys()].map((id): [string, number] => [id, fed.daemon(id).child.pid!]), ...Object.entries(others)])
  const ids = [...pids.keys()]
  const before = await Promise.all(ids.map((id) => cpuSeconds(pids.get(id)!)))
  const result = await phase()
  const after = await Promise.all(ids.map((id) => cpuSeconds(pids.get(id)!)))
  const cpu = Object.fromEntries(ids.map((id, i) => [id, Math.round(((after[i] - before[i]) * 1e6) / deliveries)]))
  return { ...result, cpuMicrosPerDelivery: { ...cpu, total: Object.values(cpu).reduce((a, b) => a + b, 0) } }
}

export function percentiles (values: number[]): { p50: number, p99: number, max: number, n: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1)
  return { p50: at(0.5), p99: at(0.99), max: +sorted[sorted.length - 1].toFixed(1), n: sorted.length }
}

/** A's primary store, read from this process. */
class Store {
  private readonly db: Database.Database
  constructor (file: string) {
    this.db = new Database(file, { readonly: true, fileMustExist: true })
  }

  count (prefix: string): number {
    return this.db.prepare('SELECT count(*) FROM "deliveries" WHERE "id" >= ? AND "id" < ?').pluck().get(`${prefix}-`, `${prefix}.`) as number
  }

  receivedAt (prefix: string): Map<string, number> {
    const rows = this.db.prepare('SELECT "id", "received_at" FROM "deliveries" WHERE "id" >= ? AND "id" < ?').all(`${prefix}-`, `${prefix}.`) as Array<{ id: string, received_at: number }>
    return new Map(rows.map((r) => [r.id, r.received_at]))
  }

  close (): void {
    this.db.close()
  }
}

function delivery (vm: string, prefix: string, i: number, at: number): Delivery {
  return { id: `${prefix}-${String(i).padStart(8, '0')}`, vm, metric: 'kpi:app.requests', format: 'processed', function: 'mean', from: Math.floor(at), to: Math.floor(at), value: i }
}

async function waitForCount (store: Store, prefix: string, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (store.count(prefix) >= n) return now()
    if (Date.now() > deadline) throw new Error(`${prefix}: ${store.count(prefix)} of ${n} deliveries at A after ${timeoutMs} ms`)
    await sleep(2)
  }
}

/** Keeps the ingest busy (`concurrency` batches in flight) until `n` deliveries are in A's store. */
async function throughput (injector: Injector, store: Store, vm: string, prefix: string, n: number, batch: number, concurrency: number): Promise<{ deliveries: number, seconds: number, perSecond: number }> {
  const started = now()
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const from = next
      next = Math.min(n, next + batch)
      const at = Date.now()
      await injector.send(Array.from({ length: next - from }, (_, k) => delivery(vm, prefix, from + k, at)))
    }
  }))
  const done = await waitForCount(store, prefix, n, 120_000)
  const seconds = (done - started) / 1000
  return { deliveries: n, seconds: +seconds.toFixed(3), perSecond: Math.round(n / seconds) }
}

/**
 * A steady `rate` for `seconds`, sent like the agent's consumer: whatever was made in the last 5 ms
 * goes in one POST, one POST in flight at a time. Latency: creation → A's received_at (ms clock).
 */
async function latency (injector: Injector, store: Store, vm: string, prefix: string, rate: number, seconds: number): Promise<ReturnType<typeof percentiles> & { rate: number }> {
  const created = new Map<string, number>()
  const total = Math.round(rate * seconds)
  const start = now()
  let made = 0
  let pending: Delivery[] = []
  let inFlight: Promise<void> | undefined
  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending
      pending = []
      await injector.send(batch)
    }
    inFlight = undefined
  }
  while (made < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate))
    for (; made < due; made++) {
      const at = now()
      const d = delivery(vm, prefix, made, at)
      created.set(d.id, at)
      pending.push(d)
    }
    if (inFlight === undefined && pending.length > 0) inFlight = flush()
    await sleep(5)
  }
  await inFlight
  if (pending.length > 0) await flush()
  await waitForCount(store, prefix, total, 60_000)
  const received = store.receivedAt(prefix)
  const latencies = [...created].map(([id, at]) => received.get(id)! - at)
  return { rate, ...percentiles(latencies) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { transport: { type: 'string', default: 'http' }, deliveries: { type: 'string', default: '20000' }, rate: { type: 'string', default: '5000' }, seconds: { type: 'string', default: '5' }, linger: { type: 'string', default: '5' }, source: { type: 'string', default: 'injector' }, rates: { type: 'string', default: '1000,5000' }, writers: { type: 'string', default: '2' } } })
  if (values.source !== 'injector' && values.source !== 'guestfs') throw new Error('--source must be injector or guestfs')
  const makeTransport = TRANSPORTS[values.transport!]
  if (makeTransport === undefined) throw new Error(`--transport must be one of ${Object.keys(TRANSPORTS).join(', ')}`)
  const transport = await makeTransport()
  const n = Number(values.deliveries)
  const rate = Number(values.rate)
  const seconds = Number(values.seconds)
  // Each site's monitoring.forwardLingerMs (how long new deliveries wait to share one signed request).
  const linger = Number(values.linger)

  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.61', hosts: [{ id: 'a1', maxVms: 1 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [] }, monitoring: { ...transport.siteMonitoring('site-a'), forwardLingerMs: linger } },
    { id: 'site-b', ip: '127.0.0.62', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' }, monitoring: { ...transport.siteMonitoring('site-b'), forwardLingerMs: linger } },
    { id: 'site-c', ip: '127.0.0.63', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'], monitoring: { ...transport.siteMonitoring('site-c'), forwardLingerMs: linger } },
  ])
  const injectors: Injector[] = []
  try {
    await fed.start()
    // direct-vm fills A's own host; chain-vm then goes A → B → C.
    for (const vm of ['direct-vm', 'chain-vm']) {
      await makeVmDir(join(fed.root, vm), { 'disk.img': 4096 })
      const placed = await fed.cli('site-a', 'place', '--vm', vm, '--dir', join(fed.root, vm))
      if (placed.code !== 0) throw new Error(`placing ${vm}: ${placed.raw.stdout}${placed.raw.stderr}`)
    }
    if (values.source === 'guestfs') {
      const storeFile = join(fed.site('site-a').dir, 'state', 'monitoring.db')
      const paths = { chain: { name: 'chain', siteId: 'site-c', vm: 'chain-vm' }, direct: { name: 'direct', siteId: 'site-a', vm: 'direct-vm' } }
      // Warm-up as in the injector mode: TLS connections between the sites, prepared statements, JIT.
      const warmStore = new Store(storeFile)
      for (const [siteId, vm] of [['site-c', 'chain-vm'], ['site-a', 'direct-vm']]) {
        const warm = await (await httpTransport()).injector(fed.site(siteId))
        await throughput(warm, warmStore, vm, `warm-${vm}`, 2000, 200, 2)
        await warm.close()
      }
      warmStore.close()
      const loadBefore = (await import('node:os')).loadavg().map((l) => +l.toFixed(2))
      const byRate = await guestfsLatency(fed, storeFile, paths, values.rates!.split(',').map(Number), seconds, Number(values.writers), percentiles)
      const report = { source: 'guestfs', forwardLingerMs: linger, machine: { loadAverage: loadBefore }, closeToStoreMs: byRate }
      await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
      await writeFile(join(REPO, 'bench', 'results', 'relay-guestfs.json'), `${JSON.stringify(report, null, 2)}\n`)
      console.log(JSON.stringify(report, null, 2))
      return
    }
    const atC = await transport.injector(fed.site('site-c'))
    // The baseline is always the direct single-hop POST to A's own ingest.
    const atA = await (await httpTransport()).injector(fed.site('site-a'))
    injectors.push(atC, atA)
    const store = new Store(join(fed.site('site-a').dir, 'state', 'monitoring.db'))

    // Warm-up: TLS connections, prepared statements, JIT.
    await throughput(atC, store, 'chain-vm', 'warm-chain', 2000, 200, 2)
    await throughput(atA, store, 'direct-vm', 'warm-direct', 2000, 200, 2)

    const result = {
      transport: transport.name,
      forwardLingerMs: linger,
      machine: { loadAverage: (await import('node:os')).loadavg().map((l) => +l.toFixed(2)) },
      throughput: {
        chain: await withCpu(fed, n, () => throughput(atC, store, 'chain-vm', 'tp-chain', n, 200, 4), transport.processes?.()),
        direct: await withCpu(fed, n, () => throughput(atA, store, 'direct-vm', 'tp-direct', n, 200, 4), transport.processes?.()),
      },
      latencyMs: {
        chain: await withCpu(fed, rate * seconds, () => latency(atC, store, 'chain-vm', 'lat-chain', rate, seconds), transport.processes?.()),
        direct: await withCpu(fed, rate * seconds, () => latency(atA, store, 'direct-vm', 'lat-direct', rate, seconds), transport.processes?.()),
      },
    }
    store.close()
    const ratios = {
      throughputChainOverDirect: +(result.throughput.chain.perSecond / result.throughput.direct.perSecond).toFixed(3),
      p99ChainOverDirect: +(result.latencyMs.chain.p99 / Math.max(1, result.latencyMs.direct.p99)).toFixed(2),
    }
    const targets = { chainPerSecondAtLeast5000: result.throughput.chain.perSecond >= 5000, chainP99AtMost50ms: result.latencyMs.chain.p99 <= 50 }
    const report = { ...result, ratios, targets }
    await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
    await writeFile(join(REPO, 'bench', 'results', transport.name === 'http' ? 'relay.json' : `relay-${transport.name}.json`), `${JSON.stringify(report, null, 2)}\n`)
    console.log(JSON.stringify(report, null, 2))
    console.log(`3 hops: ${result.throughput.chain.perSecond} deliveries/s (direct ${result.throughput.direct.perSecond}, ratio ${ratios.throughputChainOverDirect}); ` +
      `p99 at ${rate}/s: ${result.latencyMs.chain.p99} ms (direct ${result.latencyMs.direct.p99} ms, ratio ${ratios.p99ChainOverDirect})`)
  } finally {
    for (const injector of injectors) await injector.close()
    await transport.close()
    await fed.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
