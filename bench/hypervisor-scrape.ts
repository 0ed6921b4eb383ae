/**
 * bench/hypervisor-scrape: wall time and CPU of one hypervisor scrape at N domains (default 30: one
 * running TCG guest, the rest paused), fedvm against Debian's prometheus-libvirt-exporter (the peer)
 * in the same run, on one private libvirtd. Targets, each an HTTP GET /metrics on loopback:
 *
 *   peer          prometheus-libvirt-exporter (per domain: lookup, XML, info, block and interface stats)
 *   fedvm         the real agent (`fedvm agent run`), bulk statistics read at scrape time in parallel calls
 *   fedvm-cN-K    the same collector with N bulk calls at once (--compare-concurrency N, default 4) and
 *                 the groups K kept between scrapes (--compare-kept, default none: every group read at
 *                 every scrape, as before groups were kept)
 *   fedvm-cache   collectd's design: the collector read every --cache-interval-ms, scrapes served from the cache
 *
 * Scrapes rotate between the scrape-time targets in blocks of 5, so a load change on this shared
 * machine reaches all of them; each block's CPU (target process, libvirtd, all QEMUs, from
 * /proc/PID/stat) is charged to its target. The cache target runs alone afterwards: first idle
 * (nobody scrapes: the CPU it costs anyway, above what libvirtd and the QEMUs spend with no reader
 * at all, measured just before), then scraped. Last, one QEMU is stopped (SIGSTOP) and
 * each scrape-time target is scraped once more: who still answers, how fast.
 *
 *   node dist/bench/hypervisor-scrape.js [--domains 30] [--running 1] [--scrapes 30] [--cache-interval-ms 10000]
 *     [--compare-concurrency 4] [--compare-kept none] [--out bench/results/hypervisor-scrape.json]
 * Needs root and `apt-get install prometheus-libvirt-exporter` (the peer); starts its own libvirtd.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '../test/support/free-port'
import { ensureGuestImage } from '../test/support/vm/guest-image'
import { chooseDomainType } from '../test/support/vm/kvm-probe'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { startTestDomain, waitGuestReady } from '../test/support/vm/test-domain'

const run = promisify(execFile)
const PEER = '/usr/bin/prometheus-libvirt-exporter'
const DIST = join(__dirname, '..')
const TICK_MS = 1000 / 100 // USER_HZ: /proc/PID/stat counts CPU time in 10 ms ticks

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * q))] }
const round = (x: number): number => Math.round(x * 100) / 100
const uptime = async (): Promise<string> => (await run('uptime')).stdout.trim()

/** utime + stime of a process, ms. */
async function cpuMs (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

interface Target { name: string, url: string, pid: number }
interface Charge { wallMs: number[], processMs: number, libvirtdMs: number, qemuMs: number }

async function scrape (url: string, timeoutMs = 30_000): Promise<{ ms: number, text: string }> {
  const t0 = process.hrtime.bigint()
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, text }
}

async function waitAnswering (url: string, child: ChildProcess, name: string): Promise<void> {
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before answering`)
    try { await scrape(url, 20_000); return } catch { await new Promise(resolve => setTimeout(resolve, 200)) }
  }
  throw new Error(`${name} did not answer on ${url} within 30 s`)
}

async function main (): Promise<void> {
  const domains = Number(arg('domains', '30'))
  const running = Number(arg('running', '1'))
  const scrapes = Number(arg('scrapes', '30'))
  const cacheIntervalMs = Number(arg('cache-interval-ms', '10000'))
  const compareConcurrency = Number(arg('compare-concurrency', '4'))
  const compareKept = arg('compare-kept', 'none')
  const out = arg('out', join(DIST, '..', 'bench', 'results', 'hypervisor-scrape.json'))
  if (!existsSync(PEER)) throw new Error(`${PEER} is missing: apt-get install prometheus-libvirt-exporter`)
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const host = await LibvirtHost.start({ tag: 'hvbench' })
  const children: ChildProcess[] = []
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-hvbench-'))
  const result: Record<string, unknown> = { date: new Date().toISOString(), domains, running, scrapes, domainType: type, node: process.version }
  try {
    const names: string[] = []
    for (let i = 0; i < domains; i++) {
      const vm = await startTestDomain(host, { name: `fedvm-bench-${i}`, image, type, paused: i >= running, memoryMiB: i >= running ? 64 : 128 })
      names.push(vm.name)
      if (i < running) await waitGuestReady(vm)
    }
    const qemuPids = await Promise.all(names.map(async n => await host.qemuPid(n)))
    const libvirtd = Number((await readFile(join(host.dir, 'run', 'libvirtd.pid'), 'utf8')).trim())
    // Only the paused domains' QEMUs: a running TCG guest burns CPU whether or not anyone scrapes.
    // A paused QEMU still ticks a little: that share grows with a block's duration.
    const qemuCpu = async (): Promise<number> => (await Promise.all(qemuPids.slice(running).map(cpuMs))).reduce((a, b) => a + b, 0)

    const start = async (name: string, command: string, args: string[], port: number): Promise<Target> => {
      const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] })
      children.push(child)
      const target = { name, url: `http://127.0.0.1:${port}/metrics`, pid: child.pid ?? -1 }
      await waitAnswering(target.url, child, name)
      return target
    }
    const peerPort = await freePort()
    const peer = await start('peer', PEER, [`--web.listen-address=127.0.0.1:${peerPort}`, `--libvirt.uri=qemu+unix:///system?socket=${host.readOnlySocketPath}`], peerPort)
    const agentPort = await freePort()
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ listen: `127.0.0.1:${agentPort}`, stateDir: join(dir, 'state'), hypervisor: { type: 'libvirt', socket: host.readOnlySocketPath } }))
    const fedvm = await start('fedvm', process.execPath, [join(DIST, 'packaging', 'bin', 'fedvm.js'), 'agent', 'run', '--config', join(dir, 'agent.json')], agentPort)
    const serialPort = await freePort()
    const serial = await start(`fedvm-c${compareConcurrency}-${compareKept}`, process.execPath, [join(DIST, 'bench', 'hypervisor-server.js'), '--socket', host.readOnlySocketPath, '--port', String(serialPort), '--mode', 'scrape', '--concurrency', String(compareConcurrency), '--kept', compareKept], serialPort)

    // Scrape-time targets, rotating in blocks.
    const live = [peer, fedvm, serial]
    const charges = new Map<string, Charge>(live.map(t => [t.name, { wallMs: [], processMs: 0, libvirtdMs: 0, qemuMs: 0 }]))
    for (const t of live) for (let i = 0; i < 3; i++) await scrape(t.url) // warm-up: connections, JIT
    result.uptimeBefore = await uptime()
    const BLOCK = 5
    for (let done = 0; done < scrapes; done += BLOCK) {
      for (const t of live) {
        const c = charges.get(t.name) as Charge
        const [p0, l0, q0] = [await cpuMs(t.pid), await cpuMs(libvirtd), await qemuCpu()]
        for (let i = 0; i < BLOCK; i++) c.wallMs.push((await scrape(t.url)).ms)
        c.processMs += await cpuMs(t.pid) - p0
        c.libvirtdMs += await cpuMs(libvirtd) - l0
        c.qemuMs += await qemuCpu() - q0
      }
    }
    result.uptimeAfter = await uptime()
    const summary = (c: Charge): Record<string, number> => ({
      wallP50Ms: round(quantile(c.wallMs, 0.5)),
      wallP90Ms: round(quantile(c.wallMs, 0.9)),
      processCpuMsPerScrape: round(c.processMs / c.wallMs.length),
      libvirtdCpuMsPerScrape: round(c.libvirtdMs / c.wallMs.length),
      pausedQemuCpuMsPerScrape: round(c.qemuMs / c.wallMs.length)
    })
    const targets = Object.fromEntries([...charges].map(([name, c]) => [name, summary(c)]))
    result.targets = targets
    const p50 = (name: string): number => (targets[name] as Record<string, number>).wallP50Ms
    result.wallRatioVsPeer = { fedvm: round(p50('fedvm') / p50('peer')), [serial.name]: round(p50(serial.name) / p50('peer')) }
    for (const [name, s] of Object.entries(targets)) console.log(`${name.padEnd(13)} ${JSON.stringify(s)}`)
    console.log(`wall p50 ratio against the peer: ${JSON.stringify(result.wallRatioVsPeer)}  (${String(result.uptimeAfter)})`)

    // Where libvirt's time goes: the QEMU monitor (QMP) commands one scrape makes libvirtd send,
    // from libvirtd's own debug log, switched on through its admin socket for these two scrapes only.
    const admin = ['-c', `libvirtd:///system?socket=${join(host.dir, 'run', 'libvirt-admin-sock')}`]
    const daemonLog = join(host.dir, 'log', 'libvirtd.log')
    await run('virt-admin', [...admin, 'daemon-log-filters', '1:qemu.qemu_monitor 4:*'])
    await run('virt-admin', [...admin, 'daemon-log-outputs', '1:file:/var/log/libvirt/libvirtd.log'])
    const qmp: Record<string, Record<string, number>> = {}
    try {
      // Per scrape over a few: a collector that keeps groups reads them again only every keptMaxAgeMs.
      const LOGGED = 4
      for (const t of live) {
        const before = (await readFile(daemonLog)).length
        for (let i = 0; i < LOGGED; i++) await scrape(t.url)
        await new Promise(resolve => setTimeout(resolve, 500))
        const text = (await readFile(daemonLog)).subarray(before).toString()
        const counts: Record<string, number> = {}
        for (const m of text.matchAll(/QEMU_MONITOR_SEND_MSG.*?"execute\\?":\s*\\?"([^"\\]+)/g)) counts[m[1]] = (counts[m[1]] ?? 0) + 1 / LOGGED
        qmp[t.name] = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, round(v)]))
      }
    } finally {
      await run('virt-admin', [...admin, 'daemon-log-outputs', '3:file:/var/log/libvirt/libvirtd.log'])
    }
    result.qmpCommandsPerScrape = qmp
    console.log(`QMP commands per scrape: ${JSON.stringify(qmp)}`)

    // The same values: static ones of the paused domains (their disks do not move) agree with the peer's.
    const [peerText, fedvmText] = [(await scrape(peer.url)).text, (await scrape(fedvm.url)).text]
    // Compared as numbers: the peer (Go) prints 6.7108864e+07 where fedvm prints 67108864.
    const series = (text: string, name: string): Map<string, number> => new Map([...text.matchAll(new RegExp(`^${name}\\{domain="([^"]+)"[^}]*\\} (\\S+)$`, 'gm'))].map(m => [m[1], Number(m[2])]))
    const compared: Record<string, string> = {}
    for (const name of ['libvirt_domain_block_stats_read_bytes_total', 'libvirt_domain_info_maximum_memory_bytes', 'libvirt_domain_info_virtual_cpus']) {
      const [a, b] = [series(peerText, name), series(fedvmText, name)]
      const paused = names.slice(running)
      const same = paused.filter(n => a.get(n) !== undefined && a.get(n) === b.get(n)).length
      compared[name] = `${same}/${paused.length} paused domains equal`
    }
    result.valuesAgainstPeer = compared
    console.log(`values: ${JSON.stringify(compared)}`)

    // Both designs' scrape-time peers stop; the cache runs alone: idle first, then scraped.
    for (const t of [serial]) process.kill(t.pid, 'SIGTERM')
    const idleMs = cacheIntervalMs * 3
    // What libvirtd and the paused QEMUs spend when nobody reads: subtracted from the cache's idle cost.
    const [b0, bq0] = [await cpuMs(libvirtd), await qemuCpu()]
    await new Promise(resolve => setTimeout(resolve, idleMs))
    const baseline = { libvirtd: (await cpuMs(libvirtd) - b0) * 60_000 / idleMs, qemu: (await qemuCpu() - bq0) * 60_000 / idleMs }
    const cachePort = await freePort()
    const cache = await start('fedvm-cache', process.execPath, [join(DIST, 'bench', 'hypervisor-server.js'), '--socket', host.readOnlySocketPath, '--port', String(cachePort), '--mode', 'cache', '--interval-ms', String(cacheIntervalMs)], cachePort)
    const [i0, il0, iq0] = [await cpuMs(cache.pid), await cpuMs(libvirtd), await qemuCpu()]
    await new Promise(resolve => setTimeout(resolve, idleMs))
    const idle = { seconds: idleMs / 1000, processCpuMsPerMinute: round((await cpuMs(cache.pid) - i0) * 60_000 / idleMs), libvirtdCpuMsPerMinute: round((await cpuMs(libvirtd) - il0) * 60_000 / idleMs - baseline.libvirtd), pausedQemuCpuMsPerMinute: round((await qemuCpu() - iq0) * 60_000 / idleMs - baseline.qemu), baselineWithoutReaderCpuMsPerMinute: { libvirtd: round(baseline.libvirtd), pausedQemus: round(baseline.qemu) } }
    const cacheWall: number[] = []
    let maxAge = 0
    for (let i = 0; i < scrapes; i++) {
      const s = await scrape(cache.url)
      cacheWall.push(s.ms)
      maxAge = Math.max(maxAge, Number(/^fedvm_collector_data_age_seconds\{[^}]*\} (\S+)$/m.exec(s.text)?.[1] ?? 0))
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    result.cache = { intervalMs: cacheIntervalMs, idleWhileNobodyScrapes: idle, wallP50Ms: round(quantile(cacheWall, 0.5)), wallP90Ms: round(quantile(cacheWall, 0.9)), maxDataAgeSeconds: round(maxAge), wallRatioVsPeer: round(quantile(cacheWall, 0.5) / p50('peer')) }
    console.log(`fedvm-cache   ${JSON.stringify(result.cache)}`)
    process.kill(cache.pid, 'SIGTERM')

    // One QEMU stops answering its monitor: who still answers a scrape, and how fast.
    const stuckPid = qemuPids[qemuPids.length - 1]
    process.kill(stuckPid, 'SIGSTOP')
    const stuck: Record<string, string> = {}
    try {
      for (const t of [fedvm, fedvm, peer]) {
        try {
          const s = await scrape(t.url, 15_000)
          const timedOut = new RegExp(`^libvirt_domain_timed_out\\{domain="${names[names.length - 1]}"`, 'm').test(s.text)
          stuck[`${t.name}${stuck[t.name] === undefined ? '' : ' (next scrape)'}`] = `answered in ${Math.round(s.ms)} ms${timedOut ? ', the stopped domain reported timed out' : ''}`
        } catch (err) {
          stuck[t.name] = `no answer within 15 s (${(err as Error).name})`
        }
      }
    } finally {
      process.kill(stuckPid, 'SIGCONT')
    }
    result.oneQemuStopped = stuck
    console.log(`one QEMU stopped: ${JSON.stringify(stuck)}`)
  } finally {
    for (const child of children) if (child.exitCode === null && child.pid !== undefined) { try { process.kill(child.pid, 'SIGTERM') } catch { /* gone */ } }
    await host.stop()
    await rm(dir, { recursive: true, force: true })
  }
  result.libvirt = (await run('libvirtd', ['--version'])).stdout.trim()
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify(result, null, 2) + '\n')
  console.log(`written ${out}`)
}

main().catch(err => { console.error(err); process.exit(1) })
