/**
 * The ownership invariant with libvirt hosts, as a runner both paths' tests share
 * (test/e2e/libvirt-ownership.test.ts: the cold path, live-ownership.test.ts: the live path). Site p
 * is the Controller (no hosts), c and d each have one host on a libvirtd of its own (each in its own
 * network namespace); the VM (a small TCG guest) moves between c1 and d1. Each run arms one site to
 * SIGKILL itself at one step (FEDVM_FAULT_POINT_FILE), restarts it, and checks: at every sample at
 * most one libvirtd runs the domain; once settled, exactly one libvirtd has it defined and running
 * and the other has it undefined, its disk is complete there, exactly one site lists it on a host and
 * the Controller's record leads there. The points come from a seeded schedule the test prints:
 * FEDVM_FAULT_SEED=N replays it, FEDVM_FAULT_ONLY=role:step runs one point, FEDVM_FAULT_RUNS=N runs N
 * of them (default 3: the whole test stays well under tap's 300 s). A pinned case names its points
 * instead, and may change the killed site's libvirtd while that site is down (whileDown).
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Test } from 'tap'
import type { FaultPoint } from '../../../protocol/roles/fault-point'
import { Federation } from '../../protocol/support/federation'
import { runFedvm, type CliResult } from '../../protocol/support/fedvm-process'
import { startWithFaultFile } from './fault-file'
import { describeViews, settled, siteView, type SiteView } from './ownership'
import { seededRandom, shuffled } from '../seeded-random'
import { tellingConsoleLines } from '../vm/console-lines'
import { liveTestLimits } from '../vm/tcg-live-downtime'
import { ensureGuestImage } from '../vm/guest-image'
import { chooseDomainType } from '../vm/kvm-probe'
import { LibvirtHost } from '../vm/libvirt-host'
import { domainXml } from '../vm/test-domain'
import { waitFor } from '../wait'

const MiB = 1024 * 1024
const run = promisify(execFile)
/** The guest rewrites its disk's first 64 KiB with zeros in a loop: the rest must come through unchanged. */
const GUEST_WRITES = 64 * 1024
const SITES = ['site-p', 'site-c', 'site-d']
const LIMITS = { settleRetryMaxMs: 1000, initiateAttempts: 3 }

export interface OwnershipRuns {
  /** How the hosts let a running VM leave: 'save' (the cold path) or 'live'. */
  leaveBy: 'save' | 'live'
  /** The points a run may arm. */
  points: readonly FaultPoint[]
  /** 127.0.0.x prefix of the three sites' addresses (different per test file: files may run at once). */
  ipPrefix: string
  /** Runs exactly these points, in this order (no seed, no FEDVM_FAULT_* choice): a pinned case. */
  pinned?: readonly FaultPoint[]
  /** What else happens while the killed site is down, before it starts again (e.g. its domain stops). */
  whileDown?: (o: { site: string, vm: string, virsh: (...args: string[]) => Promise<string> }) => Promise<void>
}

export async function runLibvirtOwnership (t: Test, o: OwnershipRuns): Promise<void> {
  const seed = Number(process.env.FEDVM_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31))
  const only = process.env.FEDVM_FAULT_ONLY
  const runs = Number(process.env.FEDVM_FAULT_RUNS ?? 3)
  const schedule = o.pinned ?? (only === undefined ? shuffled(o.points, seededRandom(seed)).slice(0, runs) : o.points.filter((p) => p === only))

  const line = o.pinned === undefined ? `fault schedule: FEDVM_FAULT_SEED=${seed} → ${schedule.join(' ')}` : `pinned fault schedule: ${schedule.join(' ')}`
  t.comment(line)
  console.error(line)
  const started = Date.now()
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const [x, y] = await LibvirtHost.startAll(t, [{ tag: `${tag}x` }, { tag: `${tag}y` }])
  const libvirtOf: Record<string, LibvirtHost> = { 'site-c': x, 'site-d': y }
  const hostOf: Record<string, string> = { 'site-c': 'c1', 'site-d': 'd1' }

  const fed = await Federation.create([
    { id: 'site-p', ip: `${o.ipPrefix}1`, partners: ['site-c', 'site-d'], policy: { delegate: true, expose: 'all' }, limits: LIMITS },
    { id: 'site-c', ip: `${o.ipPrefix}2`, partners: ['site-p'], limits: LIMITS },
    { id: 'site-d', ip: `${o.ipPrefix}3`, partners: ['site-p'], limits: LIMITS },
  ])
  t.teardown(async () => { await keepConsoles(fed.root); await fed.close() })
  for (const site of ['site-c', 'site-d']) {
    await fed.reconfigure(site, (c) => { c.hosts = [{ id: hostOf[site], vmDir: fed.vmDir(site, hostOf[site]), maxVms: 1, libvirt: { uri: libvirtOf[site].uri, leaveBy: o.leaveBy, ...(o.leaveBy === 'live' ? liveTestLimits(type) : {}) } }] })
  }
  const faultFile = (id: string): string => join(fed.root, `${id}.fault`)
  for (const id of SITES) await writeFile(faultFile(id), '')
  await startWithFaultFile(fed, SITES, faultFile)
  t.comment(`libvirtds and sites up after ${Date.now() - started} ms (domain type ${type})`)

  // The VM as its owner hands it in: an 8 MiB raw disk, 1 MiB of it random data past what the guest rewrites.
  const vm = `fedvm-${tag}-own`
  const intake = join(fed.root, 'intake')
  await mkdir(intake, { recursive: true })
  const disk = join(intake, 'disk.img')
  const handle = await open(disk, 'w')
  await handle.write(randomBytes(MiB), 0, MiB, MiB)
  await handle.truncate(8 * MiB)
  await handle.close()
  const diskDigest = await tailDigest(disk)
  await writeFile(join(intake, 'domain.xml'), domainXml({ name: vm, type, image, memoryMiB: 96, disk, consoleLog: join(intake, 'console.log') }))
  const descriptor = join(fed.root, 'descriptor.json')
  await writeFile(descriptor, JSON.stringify({ id: vm }))
  const placed = await fed.cli('site-p', 'place', '--vm', vm, '--dir', intake, '--descriptor', descriptor)
  t.equal(placed.code, 0, `placed: ${placed.raw.stdout}${placed.raw.stderr}`)

  const views = (): SiteView[] => SITES.map((site) => siteView(fed, site, vm, site === 'site-p' ? [] : [hostOf[site]]))
  /** Each libvirtd's state of the domain (undefined: not defined there). */
  const domains = async (): Promise<Record<string, string | undefined>> => {
    const reasons = await domainReasons()
    return Object.fromEntries(Object.entries(reasons).map(([site, s]) => [site, s?.replace(/ \(.*\)$/, '')]))
  }
  /** The same with libvirt's reason, e.g. "shut off (crashed)": what stopped a domain. */
  const domainReasons = async (): Promise<Record<string, string | undefined>> => {
    const [c, d] = await Promise.all([x, y].map(async (host) => await host.virsh('domstate', '--reason', vm).then((s) => s.trim(), () => undefined)))
    return { 'site-c': c, 'site-d': d }
  }
  // Cold: a defined domain that is not shut off could run. Live: both ends hold a paused domain around
  // the switchover (the Source's after Perform, the Destination's incoming one), only one runs.
  const active = (state: string | undefined): boolean => o.leaveBy === 'live' ? state === 'running' : state !== undefined && state !== 'shut off'
  const describe = async (): Promise<string> => `${describeViews(views())}; libvirt: ${JSON.stringify(await domainReasons())}`

  for (const [index, point] of schedule.entries()) {
    const before = await domains()
    const source = Object.keys(before).find((site) => before[site] === 'running')
    if (source === undefined) throw new Error(`run ${index + 1}: no libvirtd runs the VM before the run: ${await describe()}`)
    const destination = source === 'site-c' ? 'site-d' : 'site-c'
    const role = point.slice(0, point.indexOf(':'))
    const target = role === 'controller' ? 'site-p' : role === 'source' ? source : destination

    await t.test(`run ${index + 1}/${schedule.length}: ${point} (${target}), ${source} → ${destination}`, async (t) => {
      const runStarted = Date.now()
      await writeFile(faultFile(target), point)
      const daemon = fed.daemon(target)
      const killed = new Promise<boolean>((resolve) => daemon.child.once('exit', (_code, signal) => resolve(signal === 'SIGKILL')))
      let cliDone = false
      const migrating = runFedvm(['migrate', '--config', fed.site('site-p').configFile, '--vm', vm]).finally(() => { cliDone = true })

      // At every sample from here on: never two libvirtds running the domain, never two runnable folders.
      let samples = 0
      const check = async (): Promise<{ vs: SiteView[], ds: Record<string, string | undefined> }> => {
        const [vs, ds] = [views(), await domains()]
        samples++
        const running = Object.keys(ds).filter((site) => active(ds[site]))
        if (running.length > 1) throw new Error(`two libvirtds run the VM: ${JSON.stringify(ds)}`)
        const runnable = vs.flatMap((v) => v.runnable.map((h) => `${v.site}/${h}`))
        if (runnable.length > 1) throw new Error(`two runnable copies: ${describeViews(vs)}`)
        return { vs, ds }
      }
      const reached = await waitFor(`${target} to reach ${point} or the migration to end`, async () => {
        await check()
        if (!daemon.alive) return 'killed'
        if (cliDone) return 'not-reached'
        return undefined
      }, 120_000, 150, describe)
      await writeFile(faultFile(target), '')
      if (reached === 'killed') {
        t.ok(await killed, `${target} killed itself at ${point}`)
        if (o.whileDown !== undefined && target !== 'site-p') await o.whileDown({ site: target, vm, virsh: async (...args) => await libvirtOf[target].virsh(...args) })
        await startWithFaultFile(fed, [target], faultFile)
      } else {
        t.comment(`${point} was not reached in this run`)
      }
      const answer: CliResult = await migrating
      const final = await waitFor('every site to settle', async () => {
        const now = await check()
        return settled(now.vs) ? now : undefined
      }, 120_000, 250, describe)

      t.same(SITES.filter((id) => !fed.daemon(id).alive), [], 'no daemon died but the one armed')
      const owners = Object.keys(final.ds).filter((site) => final.ds[site] === 'running')
      t.equal(owners.length, 1, `exactly one libvirtd has the domain defined and running (${JSON.stringify(owners.length === 1 ? final.ds : await domainReasons())})`)
      const owner = owners[0]
      const other = owner === 'site-c' ? 'site-d' : 'site-c'
      t.equal(final.ds[other], undefined, `the other libvirtd (${other}'s) has it undefined`)
      const listing = final.vs.filter((v) => v.location?.startsWith('host:') === true)
      t.same(listing.map((v) => `${v.site}/${v.location!}`), [`${owner}/host:${hostOf[owner]}`], 'exactly one site lists the VM on a host, the one whose libvirtd runs it')
      t.same(final.vs.flatMap((v) => v.runnable.map((h) => `${v.site}/${h}`)), [`${owner}/${hostOf[owner]}`], 'and only its host has the VM\'s folder')
      t.equal(await tailDigest(join(fed.vmDir(owner, hostOf[owner]), vm, 'disk.img')), diskDigest, 'its disk is complete there')
      t.equal(final.vs.find((v) => v.site === 'site-p')?.location, `partner:${owner}`, 'the Controller\'s record leads there')
      if (answer.code === 0) t.equal(owner, destination, `fedvm migrate said migrated: the VM is at the destination (${answer.stdout.trim()})`)
      else if (answer.json?.outcome === 'failed' && target !== 'site-p') t.equal(owner, source, `fedvm migrate said it failed (${String(answer.json?.code)}): the VM stays at the source`)
      // A confirmed domain found stopped and run again (libvirt-host.ts keepRunning) says what stopped it.
      // Its guest's console at the Destination says why, when the guest itself stopped (an oops, a panic).
      // A guest that reset or stopped right after its live arrival is reported by the Destination's host (arrival-watch.ts).
      for (const site of [source, destination]) {
        for (const e of fed.daemon(site).events()) if (e.event === 'host' && String(e.message).includes('arrived live and')) t.comment(`${site}: ${String(e.message)}`)
      }
      for (const e of fed.daemon(target).events()) {
        if (e.event !== 'host' || !String(e.message).includes('though it was confirmed')) continue
        t.comment(`${target}: ${String(e.message)}`)
        const console = await readFile(join(fed.vmDir(target, hostOf[target]), vm, 'console.log'), 'utf8').catch(() => '')
        t.comment(`${target}'s guest console since the arrival: ${tellingConsoleLines(console)}`)
      }
      t.comment(`${point}: ${answer.code === 0 ? 'migrated' : `failed (${String(answer.json?.code ?? answer.stderr.trim().slice(0, 80))})`}, VM at ${owner}, ${samples} samples, ${Date.now() - runStarted} ms`)
    })
  }
  t.comment(`whole test ${Date.now() - started} ms`)
}

/** SHA-256 of a disk past the region the guest rewrites. */
async function tailDigest (file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file, { start: GUEST_WRITES }), hash)
  return hash.digest('hex')
}

/**
 * FEDVM_KEEP_LIBVIRT_LOGS=DIR: the guests' serial consoles (each host's VM folders, the intake) are
 * kept there too, beside the libvirt hosts' logs: a guest that panicked or rebooted says so only there.
 */
async function keepConsoles (root: string): Promise<void> {
  const keep = process.env.FEDVM_KEEP_LIBVIRT_LOGS
  if (keep === undefined || keep === '') return
  const { stdout } = await run('find', [root, '-name', 'console.log']).catch(() => ({ stdout: '' }))
  for (const [i, path] of stdout.split('\n').filter(Boolean).entries()) {
    await copyFile(path, join(keep, `console-${i}-${path.slice(root.length + 1).replaceAll('/', '_')}`)).catch(() => {})
  }
}
