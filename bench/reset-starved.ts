// bench/reset-starved: does a small TCG guest migrated live during its early boot reset itself at the
// Destination when its QEMU is starved of CPU, and does it depend on the path? Each round starts a fresh
// guest (96 MiB, 8 MiB disk, like the ownership test's), waits a moment, migrates it live either through
// fedvm's relayed path (bench/support/relayed-live-migration.ts) or directly (`virsh migrate --live
// --copy-storage-all`, TCP on the namespace's loopback), then watches the Destination's domain for a few
// seconds. Only the QEMUs are starved (a cgroup cpu quota, bench/support/qemu-starver.ts), not the machine.
// QEMU's monitor events come from libvirtd's debug log: run with FEDVM_LIBVIRT_DEBUG_LOG=1 to have them.
// The -ramp modes start QEMU's downtime limit low and raise it during the migration, as fedvm's
// downtime ramp does (bench/support/downtime-ramp-driver.ts), so QEMU makes more memory passes; each
// round records the passes (the Destination's completed job statistics) to split the counts by them.
// Not part of the test suite: an experiment whose counts go into the notes.
// Usage: node dist/bench/reset-starved.js [--rounds 30] [--quota-pct 30 (0: no starvation)] [--modes relayed,direct]
//          (modes: relayed, relayed-2s (a 2000 ms downtime limit), direct, relayed-ramp, direct-ramp, stay = no migration, the control;
//           direct-hold: the ramp's calls at the ramp's moments, each setting the maximum)
//          [--delays-ms 0,500,1000,2000] [--watch-ms 5000] [--wait-ready] [--cmdline-extra ...] [--features-acpi]
//          [--emulator PATH (a QEMU wrapper, e.g. bench/support/qemu-tcg-single)]
//          [--tick-ms N (the booted guest prints a numbered line every N ms: a guest that arrived booted
//           and prints none at the Destination during the watch has hung)]
//        (prints one JSON line per round and a summary; run as root, like the libvirt tests)
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readTlsIdentity, writeTlsIdentity } from '../protocol/crypto/tls-certificate'
import { directMigrate, sharedNamespace } from './live-peer'
import { Cleanups } from './support/cleanups'
import { ExternalRamp, type RampTrace } from './support/downtime-ramp-driver'
import { completedJobStats, type JobStats } from './support/job-stats'
import { qemuPidFiles, QemuStarver } from './support/qemu-starver'
import { relayedLiveMigrate } from './support/relayed-live-migration'
import { ensureGuestImage, READY_MARKER } from '../test/support/vm/guest-image'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { domainXml, waitGuestReady } from '../test/support/vm/test-domain'

const MiB = 1024 * 1024
/** 'stay': no migration, the control: the guest is watched where it started. */
type Mode = 'relayed' | 'relayed-2s' | 'direct' | 'relayed-ramp' | 'direct-ramp' | 'direct-hold' | 'stay'
const MODES: Mode[] = ['relayed', 'relayed-2s', 'direct', 'relayed-ramp', 'direct-ramp', 'direct-hold', 'stay']

interface Round {
  round: number
  mode: Mode
  delayMs: number
  /** Whether the guest had printed its ready marker at the Source when the migration started. */
  bootedAtStart: boolean
  migrated: boolean
  error?: string
  /** The Destination's `domstate --reason` at the end of the watch, or when it left "running". */
  state?: string
  /** Host ms from the end of the migration call to the domain leaving "running" (undefined: it stayed). */
  stoppedAfterMs?: number
  /** Oops/panic/BUG lines of the guest's console after the arrival. */
  oops?: string
  /** The last lines of the Destination's QEMU log when the domain stopped (QEMU's own word). */
  qemuLog?: string
  /** QEMU's SHUTDOWN/RESET monitor events at the Destination after the arrival (libvirtd's debug log), e.g. "SHUTDOWN guest guest-reset". */
  qemuEvents?: string[]
  /** The guest failed to boot before any migration (under starvation its boot-time timer check can fail). */
  bootFailed?: string
  /** The run was stopped (a signal) during this round: its outcome says nothing. */
  interrupted?: boolean
  /** With --tick-ms: the guest's tick lines on the Destination's console by the end of the watch. */
  ticksAfterArrival?: number
  /** The Destination's `domjobinfo --completed` (memory passes as memoryIterations, downtime). */
  job?: JobStats
  /** The -ramp modes: the highest pass seen while ramping, the limits set ([ms, limit]), failed reads. */
  ramp?: Pick<RampTrace, 'maxIterationSeen' | 'limits' | 'errors' | 'firstError'>
  load: number
}

/** A round's memory passes: libvirt's completed count, else the highest the ramp saw. */
function passes (r: Round): number | undefined {
  return r.job?.memoryIterations ?? (r.ramp?.maxIterationSeen || undefined)
}

/** A guest that arrived booted, kept running, and printed no tick at the Destination (only with --tick-ms). */
function hung (r: Round): boolean {
  return r.ticksAfterArrival === 0 && r.bootedAtStart && r.stoppedAfterMs === undefined && r.oops === undefined
}

/** How many of `rounds` migrated, and how many of those arrived broken (stopped, oopsed and lived on, or hung). */
function tally (rounds: Round[]): { migrated: number, stopped: number, oopsOnly: number, hung: number, broken: number } {
  const migrated = rounds.filter((r) => r.migrated && r.interrupted !== true)
  const stopped = migrated.filter((r) => r.stoppedAfterMs !== undefined).length
  const oopsOnly = migrated.filter((r) => r.stoppedAfterMs === undefined && r.oops !== undefined).length
  const hungs = migrated.filter(hung).length
  return { migrated: migrated.length, stopped, oopsOnly, hung: hungs, broken: stopped + oopsOnly + hungs }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '30' },
      'quota-pct': { type: 'string', default: '30' },
      modes: { type: 'string', default: 'relayed,direct' },
      'delays-ms': { type: 'string', default: '0,500,1000,2000' },
      'watch-ms': { type: 'string', default: '5000' },
      'wait-ready': { type: 'boolean', default: false },
      'cmdline-extra': { type: 'string', default: '' },
      'features-acpi': { type: 'boolean', default: false },
      emulator: { type: 'string', default: '' },
      'tick-ms': { type: 'string', default: '0' },
    }
  })
  const rounds = Number(values.rounds)
  const quota = Number(values['quota-pct'])
  const modes = values.modes.split(',') as Mode[]
  for (const mode of modes) if (!MODES.includes(mode)) throw new Error(`--modes: unknown mode "${mode}" (known: ${MODES.join(', ')})`)
  if (!(quota >= 0 && quota <= 200)) throw new Error(`--quota-pct ${values['quota-pct']}: must be 0 (no starvation) to 200`)
  const delays = values['delays-ms'].split(',').map(Number)
  const watchMs = Number(values['watch-ms'])
  const tag = randomBytes(2).toString('hex')
  const netns = `fedvm-rst-${tag}`
  const cleanups = new Cleanups()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void cleanups.run().then(() => process.exit(130)) })
  try {
    const work = await mkdtemp(join(tmpdir(), 'fedvm-reset-'))
    cleanups.add(async () => await rm(work, { recursive: true, force: true }))
    cleanups.add(await sharedNamespace(netns))
    const hosts = await Promise.all([`${tag}a`, `${tag}b`].map(async (t) => await LibvirtHost.start({ tag: t, netns })))
    for (const h of hosts) cleanups.add(async () => await h.stop())
    const starver = quota === 0 ? undefined : await QemuStarver.start(tag, quota, async () => [...await qemuPidFiles(hosts[0].dir), ...await qemuPidFiles(hosts[1].dir)])
    if (starver !== undefined) cleanups.add(async () => await starver.stop())
    const image = await ensureGuestImage()
    const tlsDir = join(work, 'tls')
    const ids = await Promise.all(['source', 'destination'].map(async (n) => { await mkdir(join(tlsDir, n), { recursive: true }); await writeTlsIdentity(join(tlsDir, n), n); return await readTlsIdentity(join(tlsDir, n)) }))

    const results: Round[] = []
    for (let i = 0; i < rounds; i++) {
      cleanups.check()
      const mode = modes[i % modes.length]
      // Each mode in turn, then the direction, then the delay: every mode sees every delay in both directions.
      const cycle = Math.floor(i / modes.length)
      const delayMs = delays[Math.floor(cycle / 2) % delays.length]
      const [src, dst] = cycle % 2 === 0 ? hosts : [hosts[1], hosts[0]]
      const name = `rst${tag}r${i}`
      const srcDir = join(src.dir, 'vms', name)
      const dstDir = join(dst.dir, 'vms', name)
      await mkdir(srcDir, { recursive: true })
      const disk = join(srcDir, `${name}.img`)
      const handle = await open(disk, 'w')
      await handle.write(randomBytes(MiB), 0, MiB, MiB)
      await handle.truncate(8 * MiB)
      await handle.close()
      const consoleLog = join(srcDir, `${name}.console.log`)
      const tickMs = Number(values['tick-ms'])
      let xml = domainXml({ name, type: 'qemu', image, memoryMiB: 96, disk, consoleLog, tickMs: tickMs > 0 ? tickMs : undefined })
      if (values['cmdline-extra'] !== '') xml = xml.replace('</cmdline>', ` ${values['cmdline-extra']}</cmdline>`)
      if (values.emulator !== '') xml = xml.replace(/<emulator>[^<]*<\/emulator>/, `<emulator>${values.emulator}</emulator>`)
      if (values['features-acpi']) xml = xml.replace('  </os>\n', '  </os>\n  <features><acpi/></features>\n')
      await writeFile(join(work, `${name}.xml`), xml)
      await src.virsh('define', join(work, `${name}.xml`))
      await src.virsh('start', name)
      let bootFailed: string | undefined
      if (values['wait-ready']) await waitGuestReady({ name, uuid: '', disk, consoleLog }, 180_000).catch((err: Error) => { bootFailed = err.message.split('\n').filter((l) => /panic/.test(l)).join(' | ').slice(0, 300) })
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      const bootedAtStart = (await readFile(consoleLog, 'utf8').catch(() => '')).includes(READY_MARKER)
      const round: Round = { round: i, mode, delayMs, bootedAtStart, migrated: false, load: Number(loadavg()[0].toFixed(2)), bootFailed }
      const [at, atDir] = mode === 'stay' ? [src, srcDir] : [dst, dstDir]
      const dstLog = join(at.dir, 'log', 'libvirtd.log')
      const logFrom = (await stat(dstLog).catch(() => undefined))?.size ?? 0
      if (bootFailed === undefined) try {
        if (mode === 'relayed' || mode === 'relayed-2s' || mode === 'relayed-ramp') {
          const { ramp } = await relayedLiveMigrate(src, dst, name, dstDir, ids[0], ids[1], { ramp: mode === 'relayed-ramp', maxDowntimeMs: mode === 'relayed-2s' ? 2000 : undefined })
          if (ramp !== undefined) round.ramp = ramp
        } else if (mode === 'direct' || mode === 'direct-ramp' || mode === 'direct-hold') {
          // The limit is set low before `virsh migrate` starts its job; the job keeps it, and the ramp raises it.
          const ramp = mode === 'direct' ? undefined : await ExternalRamp.start(src.uri, name, { hold: mode === 'direct-hold' })
          try {
            await directMigrate(src, dst, name, dstDir)
          } finally {
            const trace = await ramp?.stop()
            if (trace !== undefined) round.ramp = trace
          }
        }
        round.migrated = mode !== 'stay'
      } catch (err) {
        round.error = (err as Error).message.slice(0, 300)
      }
      if (round.migrated) round.job = await completedJobStats(dst, name).catch(() => undefined)
      if (round.migrated || (mode === 'stay' && round.error === undefined && bootFailed === undefined)) {
        const arrived = Date.now()
        while (Date.now() - arrived < watchMs) {
          round.state = (await at.virsh('domstate', '--reason', name).catch((e: Error) => e.message)).trim()
          if (!round.state.startsWith('running')) { round.stoppedAfterMs = Date.now() - arrived; break }
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        const console = await readFile(join(atDir, `${name}.console.log`), 'utf8').catch(() => '')
        const oops = console.split('\n').filter((line) => /Oops|panic|BUG|RIP:|Comm:/.test(line))
        if (oops.length > 0) round.oops = oops.join(' | ').slice(0, 600)
        if (Number(values['tick-ms']) > 0) round.ticksAfterArrival = console.split('\n').filter((line) => /fedvm-tick \d+/.test(line)).length
        const events = (await readFile(dstLog).catch(() => Buffer.alloc(0))).subarray(logFrom).toString().split('\n')
          .filter((line) => line.includes('QEMU_MONITOR_RECV_EVENT') && /"event": "(SHUTDOWN|RESET|GUEST_PANICKED)"/.test(line))
          .map((line) => /"event": "(\w+)"(?:, "data": \{"guest": (\w+), "reason": "([\w-]+)"\})?/.exec(line)?.slice(1).filter(Boolean).join(' ') ?? line)
        if (events.length > 0) round.qemuEvents = events
        if (round.stoppedAfterMs !== undefined) round.qemuLog = (await readFile(join(at.dir, 'log', 'qemu', `${name}.log`), 'utf8').catch(() => '')).split('\n').slice(-4).join(' | ')
      }
      // A signal's cleanup stops the hosts under a round being watched: that round's end is the bench's, not the guest's.
      try { cleanups.check() } catch { round.interrupted = true }
      results.push(round)
      console.log(JSON.stringify(round))
      for (const host of [src, dst]) {
        await host.virsh('destroy', name).catch(() => {})
        await host.virsh('undefine', name).catch(() => {})
      }
      await rm(srcDir, { recursive: true, force: true })
      await rm(dstDir, { recursive: true, force: true })
    }
    const summary = Object.fromEntries(modes.map((mode) => {
      const mine = results.filter((r) => r.mode === mode)
      const byPasses = Object.fromEntries([...new Set(mine.filter((r) => r.migrated).map((r) => passes(r) ?? 0))].sort((a, b) => a - b)
        .map((n) => [n === 0 ? 'unknown' : String(n), tally(mine.filter((r) => r.migrated && (passes(r) ?? 0) === n))]))
      return [mode, {
        rounds: mine.length,
        ...tally(mine),
        oops: mine.filter((r) => r.oops !== undefined).length,
        bootFailed: mine.filter((r) => r.bootFailed !== undefined).length,
        migratedDuringBoot: mine.filter((r) => r.migrated && !r.bootedAtStart).length,
        byPasses
      }]
    }))
    console.log(JSON.stringify({ quotaPercent: quota, summary, throttling: await starver?.stats(), qemusStarved: starver?.starved, loadAverage: loadavg().map((l) => Number(l.toFixed(2))), when: new Date().toISOString() }))
  } finally {
    await cleanups.run()
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
