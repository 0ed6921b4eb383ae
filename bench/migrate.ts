// bench/migrate: what an operator gets from `fedvm migrate` of a running VM between two real sites
// (two `fedvm site run` daemons on loopback, each driving only its own libvirtd in its own network
// and mount namespaces), alternating in the same run with the peer, a direct
// `virsh migrate --live --copy-storage-all` of an identical guest between the same two libvirtds.
// Both guests move back and forth; while one moves the other is paused, so neither pays for the
// other's CPU. Downtime two ways: libvirt's own figure (the completed job's downtime at the
// Destination's libvirtd) and a host-clock console probe (the guest prints a numbered line every
// --tick-ms on its serial console, a unix socket at each libvirtd; the longest gap between lines the
// host timestamps, an upper bound including one tick). Then the same with a disk --large-factor
// times larger, for the downtime's independence of disk size.
// --max-downtime-ms sets QEMU's downtime limit on both paths (fedvm: the hosts' maxDowntimeMs; direct:
// `virsh migrate-setmaxdowntime` before each migration); without it both run at the default, 300 ms.
// --downtime-ramp sets the hosts' downtimeRamp, so fedvm's Source ramps the limit up to that maximum; the direct
// peer has no ramp (virsh has none), so this compares fedvm with the ramp against a plain direct migration.
// Usage: node dist/bench/migrate.js [--rounds 3] [--memory-mib 256] [--disk-mib 128] [--large-factor 4] [--tick-ms 10] [--max-downtime-ms N] [--downtime-ramp]
// (writes bench/results/migrate.json)
import { execFileSync } from 'node:child_process'
import { randomBytes, randomFillSync } from 'node:crypto'
import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Federation } from '../test/protocol/support/federation'
import { type GuestImage, ensureGuestImage } from '../test/support/vm/guest-image'
import { chooseDomainType } from '../test/support/vm/kvm-probe'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { domainXml } from '../test/support/vm/test-domain'
import { Cleanups } from './support/cleanups'
import { ConsoleProbe } from './support/console-probe'
import { DirtyPages } from './support/dirty-pages'
import { processCpuMs } from './support/process-cpu'
import { directLiveMigrate } from './support/direct-live-migration'
import { completedJobStats } from './support/job-stats'
import { type Migration, type Mode, printTable, summarise } from './support/migrate-report'

const MiB = 1024 * 1024
/** How long the probe reads before and after each migration, so the window holds the whole switchover. */
const SETTLE_MS = 600

/** A guest that moves between the two libvirtds; `at` is the index of the one running it. */
interface Guest { mode: Mode, name: string, at: 0 | 1, dirs: [string, string] }

interface Bench {
  hosts: [LibvirtHost, LibvirtHost]
  fed: Federation
  hostIds: [string, string]
  image: GuestImage
  type: 'qemu' | 'kvm'
  memoryMiB: number
  tickMs: number
  tag: string
  maxDowntimeMs: number | undefined
}

const SITES = ['site-a', 'site-b'] as const

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' }, 'memory-mib': { type: 'string', default: '256' }, 'disk-mib': { type: 'string', default: '128' },
      'large-factor': { type: 'string', default: '4' }, 'tick-ms': { type: 'string', default: '10' }, 'max-downtime-ms': { type: 'string' },
      'downtime-ramp': { type: 'boolean', default: false }
    }
  })
  const rounds = Number(values.rounds)
  const diskMiB = Number(values['disk-mib'])
  const factor = Number(values['large-factor'])
  const maxDowntimeMs = values['max-downtime-ms'] === undefined ? undefined : Number(values['max-downtime-ms'])
  const downtimeRamp = values['downtime-ramp']
  for (const [name, v] of Object.entries({ rounds, diskMiB, factor })) if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`)
  const cleanups = new Cleanups()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void cleanups.run().finally(() => process.exit(130)) })
  const load = uptime()
  try {
    const tag = randomBytes(3).toString('hex')
    const image = await ensureGuestImage()
    const type = await chooseDomainType(image)
    const starts = await Promise.allSettled([`${tag}a`, `${tag}b`].map(async (t) => await LibvirtHost.start({ tag: t })))
    for (const s of starts) if (s.status === 'fulfilled') cleanups.add(async () => await s.value.stop())
    for (const s of starts) if (s.status === 'rejected') throw s.reason
    const hosts = starts.map((s) => (s as PromiseFulfilledResult<LibvirtHost>).value) as [LibvirtHost, LibvirtHost]
    const fed = await Federation.create([
      { id: 'site-a', ip: '127.0.0.121', partners: ['site-b'] },
      { id: 'site-b', ip: '127.0.0.122', partners: ['site-a'] }
    ])
    cleanups.add(async () => await fed.close())
    const hostIds: [string, string] = [`a-hv-${tag}`, `b-hv-${tag}`]
    // The guests not moving are paused, so each host is declared larger than this machine.
    for (const i of [0, 1]) {
      await fed.reconfigure(SITES[i], (c) => { c.hosts = [{ id: hostIds[i], vmDir: fed.vmDir(SITES[i], hostIds[i]), maxVms: 8, memoryMiB: 16384, vcpus: 16, libvirt: { uri: hosts[i].uri, downtimeRamp, ...(maxDowntimeMs === undefined ? {} : { maxDowntimeMs }) } }] })
    }
    cleanups.check()
    await fed.start()
    const bench: Bench = { hosts, fed, hostIds, image, type, memoryMiB: Number(values['memory-mib']), tickMs: Number(values['tick-ms']), tag, maxDowntimeMs }

    const migrations: Migration[] = []
    const parked: Guest[] = []
    for (const size of [diskMiB, diskMiB * factor]) {
      cleanups.check()
      const guests = await Promise.all([placeFedvmGuest(bench, size), startDirectGuest(bench, size)])
      for (const g of parked) await bench.hosts[g.at].virsh('suspend', g.name).catch(() => {})
      for (let round = 0; round < rounds; round++) {
        // Alternate who goes first, so a drift in the machine's load does not favour one side.
        const order = round % 2 === 0 ? guests : [guests[1], guests[0]]
        for (const guest of order) {
          cleanups.check()
          const other = guests.find((g) => g !== guest) as Guest
          await bench.hosts[other.at].virsh('suspend', other.name)
          const m = await migrate(bench, guest, size)
          await bench.hosts[other.at].virsh('resume', other.name)
          migrations.push(m)
          console.log(JSON.stringify(m))
        }
      }
      for (const g of guests) { await bench.hosts[g.at].virsh('suspend', g.name); parked.push(g) }
    }

    const report = summarise(migrations, diskMiB, factor)
    printTable(report)
    const out = {
      command: `node dist/bench/migrate.js --rounds ${rounds} --memory-mib ${bench.memoryMiB} --disk-mib ${diskMiB} --large-factor ${factor} --tick-ms ${bench.tickMs}${maxDowntimeMs === undefined ? '' : ` --max-downtime-ms ${maxDowntimeMs}`}${downtimeRamp ? ' --downtime-ramp' : ''}`,
      maxDowntimeMs: maxDowntimeMs ?? 300, downtimeRamp, memoryMiB: bench.memoryMiB, diskMiB, largeDiskMiB: diskMiB * factor, tickMs: bench.tickMs, domainType: type,
      ...report, migrations,
      uptimeBefore: load, uptimeAfter: uptime(), when: new Date().toISOString()
    }
    await mkdir('bench/results', { recursive: true })
    await writeFile('bench/results/migrate.json', `${JSON.stringify(out, null, 2)}\n`)
    console.log('wrote bench/results/migrate.json')
  } finally {
    await cleanups.run()
  }
}

/** A VM placed at site-a through `fedvm site place`, its disk random bytes (the NBD copy moves real data). */
async function placeFedvmGuest (b: Bench, diskMiB: number): Promise<Guest> {
  const name = `fedvm-${b.tag}-${diskMiB}`
  const intake = join(b.fed.root, `intake-${name}`)
  await mkdir(intake, { recursive: true })
  await randomDisk(join(intake, 'disk.img'), diskMiB)
  await writeFile(join(intake, 'domain.xml'), domainXml({ name, type: b.type, image: b.image, memoryMiB: b.memoryMiB, disk: join(intake, 'disk.img'), consoleLog: '', consoleSocket: join(intake, 'console.sock'), tickMs: b.tickMs }))
  await writeFile(join(intake, 'descriptor.json'), JSON.stringify({ id: name }))
  const placed = await b.fed.cli('site-a', 'place', '--vm', name, '--dir', intake, '--descriptor', join(intake, 'descriptor.json'))
  if (placed.code !== 0) throw new Error(`fedvm site place ${name}: ${placed.raw.stdout}${placed.raw.stderr}\n${b.fed.daemon('site-a').stderr.slice(-2000)}`)
  await rm(intake, { recursive: true, force: true })
  const guest: Guest = { mode: 'fedvm', name, at: 0, dirs: [join(b.fed.vmDir('site-a', b.hostIds[0]), name), join(b.fed.vmDir('site-b', b.hostIds[1]), name)] }
  await ticking(guest)
  return guest
}

/** The peer's guest, the same image, memory and disk size, defined straight on the first libvirtd. */
async function startDirectGuest (b: Bench, diskMiB: number): Promise<Guest> {
  const name = `direct-${b.tag}-${diskMiB}`
  const guest: Guest = { mode: 'direct', name, at: 0, dirs: [join(b.hosts[0].dir, 'vms', name), join(b.hosts[1].dir, 'vms', name)] }
  await mkdir(guest.dirs[0], { recursive: true })
  const disk = join(guest.dirs[0], `${name}.img`)
  await randomDisk(disk, diskMiB)
  const xml = join(guest.dirs[0], 'define.xml')
  await writeFile(xml, domainXml({ name, type: b.type, image: b.image, memoryMiB: b.memoryMiB, disk, consoleLog: '', consoleSocket: join(guest.dirs[0], 'console.sock'), tickMs: b.tickMs }))
  await b.hosts[0].virsh('define', xml)
  await b.hosts[0].virsh('start', name)
  await ticking(guest)
  return guest
}

async function ticking (guest: Guest): Promise<void> {
  const probe = new ConsoleProbe()
  probe.watch(consoleSocket(guest, guest.at))
  try { await probe.nextTick(180_000) } finally { probe.close() }
}

function consoleSocket (guest: Guest, at: 0 | 1): string {
  return join(guest.dirs[at], 'console.sock')
}

/** One live migration of `guest` to the other libvirtd, probed on both consoles. */
async function migrate (b: Bench, guest: Guest, diskMiB: number): Promise<Migration> {
  const to = (1 - guest.at) as 0 | 1
  const probe = new ConsoleProbe()
  probe.watch(consoleSocket(guest, guest.at), 'source')
  probe.watch(consoleSocket(guest, to), 'destination')
  try {
    await probe.nextTick(10_000)
    const windowStart = performance.now()
    await sleep(SETTLE_MS)
    const dirty = new DirtyPages()
    const started = performance.now()
    const startedAt = Date.now()
    let controllerMs: number | undefined
    let answeredDowntimeMs: number | undefined
    let phases: Record<string, number> | undefined
    let siteCpuMs: Record<string, number> | undefined
    let timeline: Migration['timeline']
    const logged = SITES.map((site) => b.fed.daemon(site).events().length)
    const cpuBefore = await Promise.all(SITES.map(async (site) => await processCpuMs(b.fed.daemon(site).child.pid as number)))
    if (guest.mode === 'fedvm') {
      const moved = await b.fed.cli('site-a', 'migrate', '--vm', guest.name, '--to', SITES[to])
      if (moved.code !== 0 || moved.json?.path !== 'live') throw new Error(`fedvm migrate ${guest.name} --to ${SITES[to]}: ${moved.raw.stdout}${moved.raw.stderr}\n${b.fed.daemon(SITES[guest.at]).stderr.slice(-2000)}`)
      controllerMs = moved.json.durationMs
      answeredDowntimeMs = moved.json.downtimeMs
      phases = {}
      siteCpuMs = {}
      for (const [i, site] of SITES.entries()) siteCpuMs[site] = await processCpuMs(b.fed.daemon(site).child.pid as number) - cpuBefore[i]
      const at: Record<string, number> = {}
      timeline = []
      for (const [i, site] of SITES.entries()) {
        for (const e of b.fed.daemon(site).events().slice(logged[i])) {
          if (typeof e.event === 'string' && typeof e.ts === 'string') timeline.push({ site, event: e.event, atMs: Date.parse(e.ts) - startedAt, ...durationsOf(e) })
          if (e.vm === guest.name && typeof e.event === 'string' && e.event.startsWith('live-') && typeof e.ms === 'number') {
            phases[e.event.slice(5)] = e.ms
            if (typeof e.ts === 'string') at[e.event.slice(5)] = Date.parse(e.ts)
          }
        }
      }
      timeline.sort((x, y) => x.atMs - y.atMs)
      // From Perform's return at the Source to Finish's start at the Destination (both daemons log on this machine's clock).
      if (at.performed !== undefined && at.finished !== undefined) phases.handover = at.finished - phases.finished - at.performed
    } else {
      if (b.maxDowntimeMs !== undefined) await b.hosts[guest.at].virsh('migrate-setmaxdowntime', guest.name, String(b.maxDowntimeMs))
      await directLiveMigrate({ src: b.hosts[guest.at], dst: b.hosts[to], name: guest.name, srcDir: guest.dirs[guest.at], dstDir: guest.dirs[to], socketDir: join(b.fed.root, `streams-${guest.name}`) })
    }
    const wallMs = Math.round(performance.now() - started)
    const dirtyPages = dirty.stop()
    await sleep(SETTLE_MS)
    const m: Migration = {
      diskMiB, mode: guest.mode, from: guest.at === 0 ? 'A' : 'B', wallMs, controllerMs, answeredDowntimeMs, phases, timeline, siteCpuMs,
      libvirt: await completedJobStats(b.hosts[to], guest.name), probe: probe.summary(windowStart, performance.now(), 'source', 'destination'), dirty: dirtyPages, load1: Number(loadavg()[0].toFixed(2))
    }
    guest.at = to
    return m
  } finally {
    probe.close()
  }
}

async function randomDisk (path: string, mib: number): Promise<void> {
  const fd = await open(path, 'w')
  const buf = Buffer.allocUnsafe(8 * MiB)
  try {
    for (let done = 0; done < mib; done += 8) { randomFillSync(buf); await fd.write(buf, 0, Math.min(8, mib - done) * MiB) }
  } finally {
    await fd.close()
  }
}

function uptime (): string {
  return execFileSync('uptime').toString().trim()
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

main().catch((err) => { console.error(err); process.exit(1) })

/** The durations an event reports (ms, confirmMs, releaseMs, …), for the timeline. */
function durationsOf (event: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(event).filter(([key, value]) => /^(ms|[a-z]+Ms)$/.test(key) && typeof value === 'number')) as Record<string, number>
}
