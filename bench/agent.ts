// bench/agent: latency from close() in a writer to (a) the value on the agent's /metrics and (b) its arrival
// at an HTTP receiver (p50/p99), the agent's CPU per 1,000 rows/s, and the time to render /metrics for
// 100 VMs × 20 KPI columns; each against a baseline measured in the same run.
// Usage: node dist/bench/agent.js [--rows 10000] [--rate 1000]   (writes bench/results/agent.json)
import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { Gauge, Registry } from 'prom-client'
import { createAgentRegistry } from '../agent/outputs/agent-metrics'
import { KpiView } from '../agent/engine/kpi-view'
import { StorageHealth } from '../agent/state/storage-health'
import { startGuestfsProcess } from '../guestfs/guestfs-process'
import { writeSealKeyPair } from '../protocol/crypto/key-files'

const run = promisify(execFile)
const REPO = join(__dirname, '..', '..')
const FEDVM = join(REPO, 'dist', 'packaging', 'bin', 'fedvm.js')
const WRITER = join(__dirname, 'agent-writer.js')
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function percentiles (values: number[]): { p50: number, p99: number, n: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(3)
  return { p50: at(0.5), p99: at(0.99), n: sorted.length }
}

async function cpuSeconds (pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks of 10 ms
}

/** Receives deliveries; remembers when each value first arrived. */
async function startReceiver (): Promise<{ url: string, arrivals: Map<number, number>, close: () => void }> {
  const arrivals = new Map<number, number>()
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => { body += chunk })
    req.on('end', () => {
      const at = now()
      for (const delivery of [JSON.parse(body)].flat()) {
        for (const sample of delivery.samples ?? []) if (!arrivals.has(sample.value)) arrivals.set(sample.value, at)
      }
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`, arrivals, close: () => server.close() }
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** /metrics render time for 100 VMs × 20 columns, against a registry holding the same 2,000 values ready-made. */
async function measureRender (): Promise<Record<string, number>> {
  const monitors = Array.from({ length: 100 }, (_, vm) => {
    const view = new KpiView()
    view.record({ v: 1, t: 'row', seq: '1', kpi: 'app', ts: Date.now(), cols: Array.from({ length: 20 }, (_, c) => `c${c}`), vals: Array.from({ length: 20 }, (_, c) => vm * 100 + c) })
    return { vm: `vm-${vm}`, view }
  })
  const registry = createAgentRegistry({ monitors: () => monitors as never, consumers: () => [], store: undefined as never, storage: new StorageHealth(() => {}), version: 'bench' })
  const plain = new Registry()
  const gauge = new Gauge({ name: 'fedvm_kpi', help: 'h', labelNames: ['domain', 'kpi', 'column'], registers: [plain] })
  for (const m of monitors) for (const [column, value] of m.view.kpis.get('app')!.values) gauge.set({ domain: m.vm, kpi: 'app', column }, value)
  const time = async (r: Registry) => {
    const runs: number[] = []
    for (let i = 0; i < 30; i++) {
      const start = performance.now()
      await r.metrics()
      runs.push(performance.now() - start)
    }
    return percentiles(runs.slice(5)).p50
  }
  const agentMs = await time(registry)
  const plainMs = await time(plain)
  return { series: 2000, agentRenderMs: +agentMs.toFixed(3), plainRegistryRenderMs: +plainMs.toFixed(3), ratio: +(agentMs / plainMs).toFixed(2) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '10000' }, rate: { type: 'string', default: '1000' } } })
  const rows = Number(values.rows)
  const rate = Number(values.rate)
  const workdir = await mkdtemp(join(REPO, '.bench-agent-'))
  const receiver = await startReceiver()
  const mountpoint = join(workdir, 'kpi')
  const guestfs = await startGuestfsProcess(mountpoint, join(workdir, 'kpi.db'), ['--feed', `unix:${join(workdir, 'feed.sock')}`])
  const publicKey = await writeSealKeyPair(join(workdir, 'keys'))
  await writeFile(join(workdir, 'descriptor.json'), JSON.stringify({
    id: 'bench-vm',
    primarySite: { id: 'site-a', publicKey },
    monitoring: [{ metric: 'kpi:bench.bench_value', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }],
  }))
  const probe = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => probe.once('listening', resolve))
  const port = (probe.address() as AddressInfo).port
  probe.close()
  await writeFile(join(workdir, 'agent.json'), JSON.stringify({
    listen: `127.0.0.1:${port}`,
    stateDir: join(workdir, 'state'),
    vms: [{ name: 'bench-vm', descriptor: join(workdir, 'descriptor.json'), feed: `unix:${join(workdir, 'feed.sock')}` }],
    consumers: [{ type: 'http', url: receiver.url }],
  }))
  const agent = spawn(process.execPath, [FEDVM, 'agent', 'run', '--config', join(workdir, 'agent.json')], { stdio: ['ignore', 'ignore', 'inherit'] })
  const metricsUrl = `http://127.0.0.1:${port}/metrics`
  const report: Record<string, unknown> = { rows, rate }
  try {
    await waitFor('the agent', async () => (await fetch(metricsUrl).catch(() => undefined))?.ok === true, 15000)

    // (b) close() → receiver, and the agent's CPU while rows flow at `rate`.
    const cpuBefore = await cpuSeconds(agent.pid!)
    const wallBefore = now()
    const { stdout } = await run(process.execPath, [WRITER, 'fedvm', join(mountpoint, 'unencrypted', 'bench'), String(rows), String(rate)], { maxBuffer: 64 << 20 })
    const closedAt = (JSON.parse(stdout) as { closedAt: number[] }).closedAt
    await waitFor('every row at the receiver', () => receiver.arrivals.size >= rows, 60000)
    const cpu = (await cpuSeconds(agent.pid!)) - cpuBefore
    const wallSeconds = (now() - wallBefore) / 1000
    const viaFedvm = percentiles(closedAt.map((t, i) => receiver.arrivals.get(i + 1)! - t))
    report.agentCpuPercentOfCorePer1000RowsPerSecond = +((cpu / wallSeconds) * 100 / (rows / wallSeconds / 1000)).toFixed(2)

    // Baseline: the writer POSTs the same value straight to the receiver.
    receiver.arrivals.clear()
    const direct = await run(process.execPath, [WRITER, 'direct', receiver.url, String(rows), String(rate)], { maxBuffer: 64 << 20 })
    const directAt = (JSON.parse(direct.stdout) as { closedAt: number[] }).closedAt
    await waitFor('every direct POST', () => receiver.arrivals.size >= rows, 60000)
    const directLatency = percentiles(directAt.map((t, i) => receiver.arrivals.get(i + 1)! - t))
    report.closeToReceiverMs = viaFedvm
    report.directPostMs = directLatency
    report.closeToReceiverOverDirectP99 = +(viaFedvm.p99 / directLatency.p99).toFixed(2)

    // (a) close() → value on /metrics: written here (guestfs is another process), /metrics polled.
    const metricsLatency: number[] = []
    const scrapeMs: number[] = []
    for (let i = 1; i <= 300; i++) {
      const value = 1_000_000 + i
      await writeFile(join(mountpoint, 'unencrypted', 'bench'), `bench_value\n${value}\n`)
      const closed = now()
      await waitFor('the value on /metrics', async () => {
        const started = now()
        const text = await (await fetch(metricsUrl)).text()
        scrapeMs.push(now() - started)
        return text.includes(`column="bench_value"} ${value}\n`)
      }, 5000)
      metricsLatency.push(now() - closed)
    }
    report.closeToMetricsMs = percentiles(metricsLatency)
    report.oneScrapeMs = percentiles(scrapeMs)
    report.render = await measureRender()
    report.targets = { closeToReceiverP99Ms: 25, agentCpuPercentPer1000RowsPerSecond: 5, renderMsFor2000Series: 50 }
  } finally {
    agent.kill('SIGTERM')
    await new Promise((resolve) => agent.once('exit', resolve))
    await guestfs.stop()
    receiver.close()
    await rm(workdir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(report, null, 2))
  await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
  await writeFile(join(REPO, 'bench', 'results', 'agent.json'), JSON.stringify(report, null, 2) + '\n')
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
