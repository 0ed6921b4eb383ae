// bench/transfer-proxies: the data path alone, one source proxy process and one destination process
// on loopback (no sites, no control messages): a file of random data pulled through the real
// source server and puller, against `cp` of the same file in the same run. For profiling the data
// path: FEDVM_PROFILE=DIR runs both processes under --cpu-prof and leaves their profiles in DIR.
// Usage: node dist/bench/transfer-proxies.js [--mib N] [--parallel N] [--chunk-mib N]
import { execFile, fork } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { pullVm } from '../protocol/proxy/puller'
import type { SourceTicket } from '../protocol/proxy/ticket'
import { SourceProxy } from '../test/protocol/proxy/support/source-proxy'

const run = promisify(execFile)
const MiB = 1024 * 1024

interface Ready { ticket: SourceTicket, clientCert: { key: string, cert: string } }

/** The child: a source proxy serving one prepared transfer of `file` until its parent goes. */
async function serve (dir: string, file: string, bytes: number, chunkBytes: number): Promise<void> {
  const proxy = await SourceProxy.start(dir, 'vm1', chunkBytes, [{ name: 'disk.img', size: bytes, path: file }])
  process.send!({ ticket: proxy.ticket, clientCert: proxy.clientCert } satisfies Ready)
  // CPU time of the whole process (hashing workers and libuv's threads included), asked for before and after the pull.
  process.on('message', () => process.send!(process.cpuUsage()))
  process.on('disconnect', () => { proxy.close().finally(() => process.exit(0)) })
}

async function makeRandomFile (file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w')
  const buf = Buffer.allocUnsafe(64 * MiB)
  for (let done = 0; done < bytes; done += buf.length) {
    randomFillSync(buf)
    await handle.write(buf, 0, Math.min(buf.length, bytes - done))
  }
  await handle.close()
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, parallel: { type: 'string', default: '4' }, 'chunk-mib': { type: 'string', default: '8' }, serve: { type: 'string' } } })
  const bytes = Number(values.mib) * MiB
  const chunkBytes = Number(values['chunk-mib']) * MiB
  if (values.serve !== undefined) { await serve(values.serve, join(values.serve, 'disk.img'), bytes, chunkBytes); return }
  const root = await mkdtemp(join(tmpdir(), 'fedvm-bench-proxies-'))
  const profile = process.env.FEDVM_PROFILE
  try {
    await makeRandomFile(join(root, 'disk.img'), bytes)
    await mkdir(join(root, 'cp'))
    const cpStarted = performance.now()
    await run('cp', [join(root, 'disk.img'), join(root, 'cp', 'disk.img')])
    await run('sync', [join(root, 'cp', 'disk.img')])
    const cpMs = performance.now() - cpStarted
    await rm(join(root, 'cp'), { recursive: true })

    const child = fork(__filename, ['--serve', root, '--mib', String(values.mib), '--chunk-mib', String(values['chunk-mib'])], {
      execArgv: profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`, '--cpu-prof-name=source.cpuprofile'],
    })
    try {
      const ready = await new Promise<Ready>((resolve, reject) => { child.once('message', (m) => resolve(m as Ready)); child.once('exit', (code) => reject(new Error(`the source proxy exited (${code})`))) })
      await mkdir(join(root, 'incoming'))
      const sourceCpu = (): Promise<NodeJS.CpuUsage> => new Promise((resolve) => { child.once('message', (m) => resolve(m as NodeJS.CpuUsage)); child.send('cpu') })
      const sourceBefore = await sourceCpu()
      const destinationBefore = process.cpuUsage()
      const started = performance.now()
      const result = await pullVm({ ticket: ready.ticket, dir: join(root, 'incoming'), clientCert: ready.clientCert, parallel: Number(values.parallel), timeoutMs: 60_000 })
      const ms = performance.now() - started
      const destinationCpu = process.cpuUsage(destinationBefore)
      const sourceAfter = await sourceCpu()
      // CPU seconds per GiB moved: what the load of a shared machine does not change much.
      const perGiB = (u: { user: number, system: number }): { user: number, system: number } => ({ user: Number((u.user / 1e6 / (bytes / 1024 / MiB)).toFixed(2)), system: Number((u.system / 1e6 / (bytes / 1024 / MiB)).toFixed(2)) })
      const out = {
        bytes, parallel: Number(values.parallel), chunkBytes,
        cp: { ms: Math.round(cpMs), mibPerSecond: Math.round(bytes / MiB / (cpMs / 1000)) },
        proxies: { ms: Math.round(ms), mibPerSecond: Math.round(bytes / MiB / (ms / 1000)), firstByteMs: Math.round((result.firstByteAt ?? NaN) - (performance.timeOrigin + started)), ratioToCp: Number((cpMs / ms).toFixed(2)) },
        cpuSecondsPerGiB: {
          source: perGiB({ user: sourceAfter.user - sourceBefore.user, system: sourceAfter.system - sourceBefore.system }),
          destination: perGiB(destinationCpu),
        },
        loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      }
      process.stdout.write(`${JSON.stringify(out)}\n`)
    } finally {
      child.disconnect()
      await new Promise((resolve) => child.once('exit', resolve))
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err) => { process.stderr.write(`${err.stack ?? err}\n`); process.exitCode = 1 })
