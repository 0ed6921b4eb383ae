/**
 * The live migration's stream relay alone, without QEMU: an NBD-like write load (a 28-byte request
 * header and its payload, a 16-byte reply; QEMU's mirror job keeps up to 16 writes of up to 1 MiB in
 * flight, MAX_IN_FLIGHT and MAX_IO_BYTES in block/mirror.c) over a unix socket straight to the
 * server, then through StreamPark and StreamParker (unix socket, TLS on loopback, unix socket), each
 * side in its own thread. Shows how much of the direct rate the relay keeps, and the CPU each side's
 * thread spends per GiB relayed (a 2-core host shares it with both QEMUs). Writes
 * bench/results/stream-relay.json.
 *
 *   node dist/bench/stream-relay.js [--mib 512] [--request-kib 1024] [--in-flight 16] [--rounds 3]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { readTlsIdentity, writeTlsIdentity } from '../protocol/crypto/tls-certificate'
import { StreamPark, StreamParker } from '../protocol/proxy/stream-relay'

const REQUEST_HEADER = 28
const REPLY = 16

/** Answers each request once its payload has arrived, like an NBD server's simple reply to a write. */
function nbdLikeServer (path: string): Promise<Server> {
  const server = createServer((s) => {
    let pending: Buffer = Buffer.alloc(0)
    let need = -1
    s.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      for (;;) {
        if (need < 0) {
          if (pending.length < REQUEST_HEADER) return
          need = REQUEST_HEADER + pending.readUInt32BE(24)
        }
        if (pending.length < need) return
        s.write(Buffer.alloc(REPLY))
        pending = pending.subarray(need)
        need = -1
      }
    })
    s.on('error', () => {})
  })
  return new Promise((resolve) => server.listen(path, () => resolve(server)))
}

/** Sends `total` bytes as requests of `size`, `inFlight` at a time; resolves with the elapsed ms. */
function writeLoad (path: string, total: number, size: number, inFlight: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(path)
    const payload = Buffer.alloc(size, 7)
    const header = Buffer.alloc(REQUEST_HEADER)
    header.writeUInt32BE(size, 24)
    const requests = Math.ceil(total / size)
    let sent = 0
    let answered = 0
    let replyBytes = 0
    const started = performance.now()
    const send = (): void => {
      while (sent < requests && sent - answered < inFlight) {
        s.write(header)
        s.write(payload)
        sent++
      }
    }
    s.setNoDelay(true)
    s.once('connect', send)
    s.on('data', (chunk: Buffer) => {
      replyBytes += chunk.length
      answered = Math.floor(replyBytes / REPLY)
      if (answered === requests) {
        s.destroy()
        resolve(performance.now() - started)
        return
      }
      send()
    })
    s.once('error', reject)
  })
}

interface RelayRole { role: 'park' | 'parker', work: string, serverPath: string, relayPath: string, port?: number }

/** This thread's CPU time (user + system), ms, from /proc (clock ticks of 10 ms). */
function threadCpuMs (): number {
  const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** Each side of the relay runs in its own thread (its own event loop), as the two sites' daemons do. */
async function runRole (o: RelayRole): Promise<void> {
  parentPort?.on('message', (m: unknown) => { if (m === 'cpu') parentPort?.postMessage({ cpuMs: threadCpuMs() }) })
  const ids = await Promise.all(['source', 'destination'].map(async (n) => await readTlsIdentity(join(o.work, n))))
  const token = 'bench-token'
  if (o.role === 'park') {
    const park = new StreamPark(() => token)
    const https = createHttpsServer({ key: ids[0].key, cert: ids[0].cert, requestCert: true, rejectUnauthorized: false })
    https.on('upgrade', (req, socket) => park.handleUpgrade(req, socket))
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
    await park.listen(token, 'nbd', o.relayPath)
    parentPort?.postMessage({ port: (https.address() as { port: number }).port })
  } else {
    new StreamParker({ url: `https://127.0.0.1:${o.port as number}`, fingerprint: ids[0].fingerprint, token, channel: 'nbd', clientCert: ids[1], targetPath: o.serverPath })
    parentPort?.postMessage({ parked: true })
  }
}

async function startRole (o: RelayRole): Promise<{ worker: Worker, answer: Record<string, unknown> }> {
  const worker = new Worker(__filename, { workerData: o })
  const answer = await new Promise<Record<string, unknown>>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) })
  return { worker, answer }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '512' }, 'request-kib': { type: 'string', default: '1024' }, 'in-flight': { type: 'string', default: '16' }, rounds: { type: 'string', default: '3' } } })
  const total = Number(values.mib) * 1024 * 1024
  const size = Number(values['request-kib']) * 1024
  const inFlight = Number(values['in-flight'])
  const work = await mkdtemp(join(tmpdir(), 'fedvm-relay-bench-'))
  const workers: Worker[] = []
  try {
    await Promise.all(['source', 'destination'].map(async (n) => { await mkdir(join(work, n)); await writeTlsIdentity(join(work, n), n) }))
    const serverPath = join(work, 'server.sock')
    const relayPath = join(work, 'relay.sock')
    const server = await nbdLikeServer(serverPath)
    const park = await startRole({ role: 'park', work, serverPath, relayPath })
    workers.push(park.worker)
    const parker = await startRole({ role: 'parker', work, serverPath, relayPath, port: park.answer.port as number })
    workers.push(parker.worker)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const cpuMs = async (): Promise<number[]> => await Promise.all(workers.map(async (w) => await new Promise<number>((resolve) => {
      w.once('message', (m: { cpuMs: number }) => resolve(m.cpuMs))
      w.postMessage('cpu')
    })))
    console.log(`${values.mib} MiB as ${values['request-kib']} KiB writes, ${inFlight} in flight`)
    const results: Array<{ mode: string, ms: number, mibPerS: number, cpuMsPerGiB?: { source: number, destination: number }, load: number }> = []
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const [mode, path] of [['direct', serverPath], ['relay', relayPath]] as const) {
        const before = await cpuMs()
        const ms = await writeLoad(path, total, size, inFlight)
        const after = await cpuMs()
        const perGiB = (i: number): number => Math.round((after[i] - before[i]) / (total / 2 ** 30))
        const cpu = mode === 'relay' ? { source: perGiB(0), destination: perGiB(1) } : undefined
        const result = { mode, ms: Math.round(ms), mibPerS: Math.round(total / 1048576 / (ms / 1000)), ...(cpu === undefined ? {} : { cpuMsPerGiB: cpu }), load: Number(loadavg()[0].toFixed(2)) }
        results.push(result)
        console.log(`${mode.padEnd(6)} ${ms.toFixed(0).padStart(6)} ms  ${String(result.mibPerS).padStart(5)} MiB/s${cpu === undefined ? '' : `  CPU per GiB: source side ${cpu.source} ms, destination side ${cpu.destination} ms`}  load ${result.load}`)
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    }
    server.close()
    const median = (mode: string): number => { const v = results.filter((r) => r.mode === mode).map((r) => r.mibPerS).sort((a, b) => a - b); return v[Math.floor(v.length / 2)] }
    const out = { command: `node dist/bench/stream-relay.js --mib ${values.mib} --request-kib ${values['request-kib']} --in-flight ${inFlight} --rounds ${values.rounds}`, medianMibPerS: { direct: median('direct'), relay: median('relay') }, relayToDirect: Number((median('relay') / median('direct')).toFixed(2)), results, when: new Date().toISOString() }
    console.log(`relay / direct (median rates): ${out.relayToDirect}`)
    await mkdir('bench/results', { recursive: true })
    await writeFile('bench/results/stream-relay.json', `${JSON.stringify(out, null, 2)}\n`)
    console.log('wrote bench/results/stream-relay.json')
  } finally {
    for (const w of workers) await w.terminate()
    await rm(work, { recursive: true, force: true })
  }
}

if (isMainThread) main().catch((err) => { console.error(err); process.exit(1) })
else runRole(workerData as RelayRole).catch((err) => { console.error(err); process.exit(1) })
