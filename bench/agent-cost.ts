// bench/agent-cost: what the host agent costs, each figure against a baseline measured in the same run.
// - CPU per 1,000 rows/s: the agent (raw specifier, one HTTP consumer) following a real guestfs feed while a
//   writer closes `rows` KPI files at `rate`, against the floor (bench/agent-feed-floor: a process that only
//   takes and acks the same feed); CPU seconds of each process (/proc, process.cpuUsage), not wall time.
// - close() → value on the agent's /metrics, p50/p99, polled back to back, against the same write to a plain
//   file served by a textfile collector (bench/agent-textfile-peer).
// - RSS per followed VM: the agent following `vms` fake guests (one row per VM per second) minus the same
//   agent following none.
// Usage: node dist/bench/agent-cost.js [--rows 10000] [--rate 1000] [--vms 100] [--only cpu|metrics|memory]
//        [--cpu-prof DIR]   (the agent writes a V8 CPU profile there)          writes bench/results/agent-cost.json
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { startGuestfsProcess, type GuestfsProcess } from '../guestfs/guestfs-process'
import { writeSealKeyPair } from '../protocol/crypto/key-files'
import { decodeFrame, encodeFrame, FEED_VERSION, LineSplitter } from '../protocol/kpi-feed/frames'

const run = promisify(execFile)
const REPO = join(__dirname, '..', '..')
const FEDVM = join(REPO, 'dist', 'packaging', 'bin', 'fedvm.js')
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const MIB = 1024 * 1024

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '1000' },
    vms: { type: 'string', default: '100' },
    only: { type: 'string' },
    /** `none`: the CPU phase without a consumer (what following the feed and storing costs apart from sending). */
    consumer: { type: 'string', default: 'http' },
    'cpu-prof': { type: 'string' },
  },
})

function percentiles (values: number[]): { p50: number, p99: number, n: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(3)
  return { p50: at(0.5), p99: at(0.99), n: sorted.length }
}

async function procStat (pid: number): Promise<{ cpuSeconds: number, rssBytes: number }> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  // utime + stime in clock ticks of 10 ms; rss in pages of 4 KiB
  return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100, rssBytes: Number(fields[21]) * 4096 }
}

/** System calls that read and write (any fd: sockets, the database, its WAL): a count the machine's load does not change. */
async function procIo (pid: number): Promise<{ syscr: number, syscw: number }> {
  const text = await readFile(`/proc/${pid}/io`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1])
  return { syscr: field('syscr'), syscw: field('syscw') }
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    if (intervalMs > 0) await sleep(intervalMs)
  }
}

async function freePort (): Promise<number> {
  const probe = createNetServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => probe.once('listening', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** Counts the deliveries' raw samples by value. */
async function startReceiver (): Promise<{ url: string, values: Set<number>, posts: () => number, close: () => void }> {
  const values = new Set<number>()
  let posts = 0
  const server = createHttpServer((req, res) => {
    posts++
    let body = ''
    req.on('data', (chunk) => { body += chunk })
    req.on('end', () => {
      for (const delivery of [JSON.parse(body)].flat()) for (const sample of delivery.samples ?? []) values.add(Number(sample.value))
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`, values, posts: () => posts, close: () => server.close() }
}

interface RunningAgent { child: ChildProcess, metricsUrl: string, stop: () => Promise<void> }

async function startAgent (dir: string, vms: Array<{ name: string, feed: string }>, receiverUrl: string | undefined, publicKey: string, profile = false): Promise<RunningAgent> {
  await mkdir(dir, { recursive: true })
  const port = await freePort()
  for (const vm of vms) {
    await writeFile(join(dir, `${vm.name}.json`), JSON.stringify({
      id: vm.name,
      primarySite: { id: 'site-a', publicKey },
      monitoring: [{ metric: 'kpi:bench.bench_value', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }],
    }))
  }
  await writeFile(join(dir, 'agent.json'), JSON.stringify({
    listen: `127.0.0.1:${port}`,
    stateDir: join(dir, 'state'),
    vms: vms.map((vm) => ({ name: vm.name, descriptor: join(dir, `${vm.name}.json`), feed: vm.feed })),
    consumers: receiverUrl === undefined ? [] : [{ type: 'http', url: receiverUrl }],
  }))
  const profiling = profile && args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : []
  const child = spawn(process.execPath, [...profiling, FEDVM, 'agent', 'run', '--config', join(dir, 'agent.json')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { log += chunk })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const metricsUrl = `http://127.0.0.1:${port}/metrics`
  await waitFor('the agent', async () => {
    if (child.exitCode !== null) throw new Error(`the agent exited: ${log}`)
    return (await fetch(metricsUrl).catch(() => undefined))?.ok === true
  }, 15000, 20)
  return {
    child,
    metricsUrl,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    },
  }
}

function writer (file: string, rows: number, rate: number): Promise<{ stdout: string }> {
  return run(process.execPath, [join(__dirname, 'agent-writer.js'), 'fedvm', file, String(rows), String(rate)], { maxBuffer: 64 << 20 })
}

async function measureCpu (workdir: string, guestfs: { mountpoint: string, feed: string }, publicKey: string): Promise<Record<string, unknown>> {
  const rows = Number(args.rows)
  const rate = Number(args.rate)
  const file = join(guestfs.mountpoint, 'unencrypted', 'bench')
  const receiver = await startReceiver()
  const withConsumer = args.consumer !== 'none'
  const agent = await startAgent(join(workdir, 'cpu'), [{ name: 'bench-vm', feed: guestfs.feed }], withConsumer ? receiver.url : undefined, publicKey, true)
  let agentCpu: number
  let syscalls: Record<string, number>
  try {
    const before = await procStat(agent.child.pid!)
    const ioBefore = await procIo(agent.child.pid!)
    await writer(file, rows, rate)
    if (withConsumer) await waitFor('every row at the receiver', () => receiver.values.size >= rows, 120000, 20)
    else await waitFor('every row on /metrics', async () => /fedvm_kpi_writes_total\{[^}]*kpi="bench"\} (\d+)/.exec(await (await fetch(agent.metricsUrl)).text())?.[1] === String(rows + 1), 120000, 50)
    agentCpu = (await procStat(agent.child.pid!)).cpuSeconds - before.cpuSeconds
    const ioAfter = await procIo(agent.child.pid!)
    syscalls = { readsPer1000Rows: Math.round((ioAfter.syscr - ioBefore.syscr) * 1000 / rows), writesPer1000Rows: Math.round((ioAfter.syscw - ioBefore.syscw) * 1000 / rows) }
  } finally {
    await agent.stop()
    receiver.close()
  }
  // The floor follows the same feed after the rows the agent acknowledged.
  const floor = spawn(process.execPath, [join(__dirname, 'agent-feed-floor.js'), guestfs.feed, String(rows)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  floor.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const floorDone = new Promise((resolve) => floor.once('exit', resolve))
  await sleep(300)
  await writer(file, rows, rate)
  await Promise.race([floorDone, sleep(60000)])
  const floorCpu = (JSON.parse(out) as { cpuSeconds: number }).cpuSeconds
  const perThousand = (cpuSeconds: number) => +(cpuSeconds * 1e5 / rows).toFixed(2)
  return {
    rows,
    rate,
    consumer: withConsumer ? 'http' : 'none',
    posts: receiver.posts(),
    agentSyscalls: syscalls,
    agentCpuSeconds: +agentCpu.toFixed(2),
    floorCpuSeconds: +floorCpu.toFixed(3),
    agentCpuPercentOfCorePer1000RowsPerSecond: perThousand(agentCpu),
    floorCpuPercentOfCorePer1000RowsPerSecond: perThousand(floorCpu),
    agentOverFloor: +(agentCpu / floorCpu).toFixed(2),
  }
}

async function measureMetricsLatency (workdir: string, guestfs: { mountpoint: string, feed: string }, publicKey: string): Promise<Record<string, unknown>> {
  const agent = await startAgent(join(workdir, 'metrics'), [{ name: 'bench-vm', feed: guestfs.feed }], undefined, publicKey)
  const textFile = join(workdir, 'textfile.prom')
  writeFileSync(textFile, '')
  const peer = spawn(process.execPath, [join(__dirname, 'agent-textfile-peer.js'), textFile], { stdio: ['ignore', 'pipe', 'inherit'] })
  const peerPort = await new Promise<number>((resolve) => peer.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(Number(line))))
  const measure = async (url: string, write: (value: number) => Promise<void> | void, expect: (value: number) => string): Promise<{ p50: number, p99: number, n: number }> => {
    const latencies: number[] = []
    for (let i = 1; i <= 300; i++) {
      const value = 1_000_000 + i
      await write(value)
      const closed = now()
      await waitFor('the value on /metrics', async () => (await (await fetch(url)).text()).includes(expect(value)), 5000, 0)
      latencies.push(now() - closed)
      await sleep(10)
    }
    return percentiles(latencies)
  }
  try {
    await sleep(500) // the agent has connected to the feed and settled
    const viaAgent = await measure(agent.metricsUrl, (value) => writeFile(join(guestfs.mountpoint, 'unencrypted', 'bench'), `bench_value\n${value}\n`), (value) => `column="bench_value"} ${value}\n`)
    const viaTextfile = await measure(`http://127.0.0.1:${peerPort}/metrics`, (value) => writeFileSync(textFile, `fedvm_kpi{kpi="bench",column="bench_value"} ${value}\n`), (value) => `} ${value}\n`)
    return { closeToAgentMetricsMs: viaAgent, closeToTextfileMetricsMs: viaTextfile, agentOverTextfileP99: +(viaAgent.p99 / viaTextfile.p99).toFixed(2) }
  } finally {
    peer.kill('SIGTERM')
    await agent.stop()
  }
}

/** Fake guests on unix sockets: each answers a hello with stats and then sends one row a second. */
async function startFakeGuests (dir: string, count: number): Promise<{ feeds: string[], close: () => Promise<void> }> {
  const servers: Server[] = []
  const timers: NodeJS.Timeout[] = []
  const feeds: string[] = []
  for (let g = 0; g < count; g++) {
    const path = join(dir, `guest-${g}.sock`)
    let seq = 0
    const server = createNetServer((socket) => {
      socket.setEncoding('utf8')
      const lines = new LineSplitter()
      socket.on('error', () => {})
      socket.on('data', (chunk: string) => lines.push(chunk, (line) => {
        const frame = decodeFrame(line)
        if (frame.t !== 'hello') return
        socket.write(encodeFrame({ v: FEED_VERSION, t: 'stats', committed: seq, refused: 0, last: String(seq), epoch: 'b0b0b0b0b0b0b0b0', acked: frame.after, ...(frame.id ? { hello: frame.id } : {}) }))
        const timer = setInterval(() => {
          seq++
          if (!socket.destroyed) socket.write(encodeFrame({ v: FEED_VERSION, t: 'row', seq: String(seq), kpi: 'bench', ts: Date.now(), cols: ['bench_value', 'other'], vals: [seq, seq * 2] }))
        }, 1000)
        timers.push(timer)
      }))
    })
    await new Promise<void>((resolve) => server.listen(path, resolve))
    servers.push(server)
    feeds.push(`unix:${path}`)
  }
  return {
    feeds,
    close: async () => {
      for (const timer of timers) clearInterval(timer)
      await Promise.all(servers.map((server) => new Promise((resolve) => { server.close(resolve); server.unref() })))
    },
  }
}

async function measureMemory (workdir: string, publicKey: string): Promise<Record<string, unknown>> {
  const vms = Number(args.vms)
  const settledRss = async (agent: RunningAgent) => {
    await sleep(15000) // rows flow, the heap grows to its working size
    const samples: number[] = []
    for (let i = 0; i < 5; i++) {
      samples.push((await procStat(agent.child.pid!)).rssBytes)
      await sleep(1000)
    }
    return Math.max(...samples)
  }
  const idle = await startAgent(join(workdir, 'memory-0'), [], undefined, publicKey)
  const idleRss = await settledRss(idle).finally(() => idle.stop())
  const guests = await startFakeGuests(workdir, vms)
  const busy = await startAgent(join(workdir, `memory-${vms}`), guests.feeds.map((feed, i) => ({ name: `vm-${i}`, feed })), undefined, publicKey)
  try {
    const busyRss = await settledRss(busy)
    return { vms, agentRssMiBNoVm: +(idleRss / MIB).toFixed(1), agentRssMiB: +(busyRss / MIB).toFixed(1), rssMiBPerVm: +((busyRss - idleRss) / vms / MIB).toFixed(3) }
  } finally {
    await busy.stop()
    await guests.close()
  }
}

async function main (): Promise<void> {
  const report: Record<string, unknown> = { loadAverageAtStart: loadavg().map((l) => +l.toFixed(2)) }
  const workdir = await mkdtemp(join(REPO, '.bench-agent-cost-'))
  const publicKey = await writeSealKeyPair(join(workdir, 'keys'))
  let guestfs: GuestfsProcess | undefined
  try {
    const mount = { mountpoint: join(workdir, 'kpi'), feed: `unix:${join(workdir, 'feed.sock')}` }
    if (args.only === undefined || args.only === 'cpu' || args.only === 'metrics') {
      guestfs = await startGuestfsProcess(mount.mountpoint, join(workdir, 'kpi.db'), ['--feed', mount.feed])
      await writeFile(join(mount.mountpoint, 'unencrypted', 'bench'), 'bench_value\n0\n')
    }
    if (args.only === undefined || args.only === 'cpu') report.cpu = await measureCpu(workdir, mount, publicKey)
    if (args.only === undefined || args.only === 'metrics') report.metrics = await measureMetricsLatency(workdir, mount, publicKey)
    if (args.only === undefined || args.only === 'memory') report.memory = await measureMemory(workdir, publicKey)
    report.loadAverageAtEnd = loadavg().map((l) => +l.toFixed(2))
    report.targets = { agentCpuPercentOfCorePer1000RowsPerSecond: 5, closeToAgentMetricsP99Ms: 5, rssMiBPerVm: 1 }
  } finally {
    await guestfs?.stop()
    await rm(workdir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(report, null, 2))
  await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
  await writeFile(join(REPO, 'bench', 'results', 'agent-cost.json'), JSON.stringify(report, null, 2) + '\n')
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
