import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ensureDeb, ensureVmImage } from '../packaging/support/artifacts'
import { DeliveryReceiver } from '../support/federation/delivery-receiver'
import { makeIntake, rowOf } from '../support/federation/kpi-vm'
import { runFedvmIn } from '../support/federation/netns-fedvm'
import { SiteNetwork } from '../support/federation/site-network'
import { VmSite } from '../support/federation/vm-site'
import { tellingConsoleLines } from '../support/vm/console-lines'
import { waitFor } from '../support/wait'

// A VM of packaging/vm-image (guestfs + a sample app writing a KPI row every second) migrates live
// between two sites, each in its own network namespace with its own libvirtd, `fedvm site run` and
// `fedvm agent run` (the harness of vm-migration.test.ts, whose hosts leave cold). The guest keeps
// running: same UUID, no boot at B; the primary (A) stores every KPI row once, without a gap, across
// the move; A never learns B's host name.

const run = promisify(execFile)
t.setTimeout(15 * 60_000)
const log = (line: string): void => { t.comment(line) }
const RECEIVER_PORT = 7481
const B_HOST = 'b-live-hv-5k2'
/** A line the guest kernel prints once per boot. */
const KERNEL_BOOT = 'Linux version'

t.test('a KPI-writing VM migrates live between two sites in their own network namespaces', async (t) => {
  const started = Date.now()
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`
  const image = await ensureVmImage(await ensureDeb(log), log)
  log(`image ready after ${elapsed()}`)
  const cleanups: Array<() => Promise<unknown>> = []
  t.teardown(async () => {
    for (const clean of cleanups.reverse()) await clean().catch((err) => log(`cleanup: ${String(err)}`))
  })
  const tag = randomBytes(3).toString('hex')
  const root = await mkdtemp(join(tmpdir(), 'fvm-live-'))
  cleanups.push(async () => await rm(root, { recursive: true, force: true }))
  const { network, sites: [netA, netB] } = await SiteNetwork.create(tag, ['a', 'b'])
  cleanups.push(async () => await network.destroy())
  const created = await Promise.allSettled([
    VmSite.create({ id: 'site-a', hostId: 'a-live-hv1', net: netA, dir: join(root, 'a'), tag: `${tag}a` }),
    VmSite.create({ id: 'site-b', hostId: B_HOST, net: netB, dir: join(root, 'b'), tag: `${tag}b` }),
  ])
  for (const c of created) if (c.status === 'fulfilled') cleanups.push(async () => await c.value.stop())
  for (const c of created) if (c.status === 'rejected') throw c.reason
  const [a, b] = created.map((c) => (c as PromiseFulfilledResult<VmSite>).value)
  const receiver = await DeliveryReceiver.start(netA.name, netA.address, RECEIVER_PORT, root)
  cleanups.push(async () => await receiver.stop())
  // Both hosts leave by `live`, the default.
  await a.writeConfig([b])
  await b.writeConfig([a])
  await Promise.all([a.startDaemon(), b.startDaemon()])
  log(`sites up after ${elapsed()}`)

  const vmId = `kpilive-${tag}`
  const descriptor = {
    id: vmId,
    primarySite: { id: 'site-a', publicKey: a.keys.sealPublicKey },
    monitoring: [{ metric: 'kpi:users.sample', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }],
  }
  const intake = await makeIntake(image, join(root, 'intake'), vmId, descriptor)
  for (const site of [a, b]) await site.startAgent([{ type: 'http', name: 'witness', url: `${receiver.url}/${site.id}` }])
  const context = async (): Promise<string> => [`A site: ${a.daemon?.stderr.slice(-1500) ?? ''}`, `B site: ${b.daemon?.stderr.slice(-1500) ?? ''}`,
    `A agent: ${a.agent?.stderr.slice(-800) ?? ''}`, `B agent: ${b.agent?.stderr.slice(-800) ?? ''}`].join('\n')
  const printedAtA: string[] = []

  const placed = await a.cli('place', '--vm', vmId, '--dir', intake.dir, '--descriptor', intake.descriptorFile)
  printedAtA.push(placed.stdout, placed.stderr)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-a', local: true }, 'placed at site-a')
  const uuid = (await a.libvirt.virsh('domuuid', vmId)).trim()
  const rows = (): Array<{ seq: number, epoch: string, path: string }> => receiver.received
    .filter((r) => r.delivery.vm === vmId).map((r) => ({ ...rowOf(r.delivery.id)!, path: r.path }))
  const maxSeq = (): number => Math.max(0, ...rows().map((r) => r.seq))
  const first = await waitFor('the first KPI row from A\'s agent', () => rows().find((r) => r.path.endsWith('/site-a')), 180_000, 250, context)
  await waitFor('a few more rows', () => maxSeq() >= first.seq + 3 || undefined, 30_000, 250, context)
  log(`KPI rows from A after ${elapsed()}`)

  t.match(await readFile(join(a.vmDir, vmId, 'console.log'), 'utf8'), KERNEL_BOOT, 'the boot at A shows on its console (what a boot at B would show)')
  const before = maxSeq()
  const mark = Date.now()
  const moved = await a.cli('migrate', '--vm', vmId)
  printedAtA.push(moved.stdout, moved.stderr)
  t.match(moved.json, { outcome: 'migrated', destination: 'site-b', path: 'live' }, `migrated live to site-b (${moved.stdout.trim() || moved.stderr})`)
  log(`live A → B: fedvm migrate ${Date.now() - mark} ms, downtime ${String(moved.json?.downtimeMs)} ms (libvirt's, on the host clock)`)
  t.equal((await b.libvirt.virsh('domstate', vmId)).trim(), 'running', 'running at B')
  t.equal((await b.libvirt.virsh('domuuid', vmId)).trim(), uuid, 'same UUID')
  t.equal((await a.libvirt.virsh('list', '--all', '--name')).trim(), '', 'no domain left at A')
  t.same((await readdir(a.vmDir)).filter((n) => !n.startsWith('.')), [], 'no VM directory at A')
  // If none come, whether the guest broke on arriving (its console at B) and how many memory passes it took say why.
  const arrivalContext = async (): Promise<string> => [await context(),
    `B console: ${tellingConsoleLines(await readFile(join(b.vmDir, vmId, 'console.log'), 'utf8').catch(() => ''))}`,
    `B's completed job: ${(await b.libvirt.virsh('domjobinfo', '--completed', vmId).catch((err: Error) => err.message)).replace(/\s+/g, ' ')}`].join('\n')
  await waitFor('KPI rows from B\'s agent', () => rows().some((r) => r.path.endsWith('/site-b') && r.seq > before + 3) || undefined, 90_000, 250, arrivalContext)
  // B's QEMU opened the serial console file in B's VM folder: a boot there would print the kernel's banner into it.
  const consoleB = await readFile(join(b.vmDir, vmId, 'console.log'), 'utf8')
  // On a boot, what the guest printed before it (a panic's reason) and after goes to the test's output.
  t.notOk(consoleB.includes(KERNEL_BOOT), 'no boot at B: the guest kept running', consoleB.includes(KERNEL_BOOT) ? { diagnostic: true, console: consoleB.slice(0, 6000) } : {})

  // The primary's view: every row once, no gap, one guest database throughout.
  const witnessed = new Set(rows().map((r) => r.seq))
  const stored = await waitFor('the primary store to hold every row the agents sent', async () => {
    const q = await runFedvmIn(netA.name, ['monitor', 'query', '--config', a.configFile, '--vm', vmId, '--output', 'json'])
    if (q.code !== 0) throw new Error(`fedvm monitor query: ${q.stderr}`)
    const d = q.json.deliveries as Array<{ id: string }>
    const seqs = new Set(d.map((x) => rowOf(x.id)?.seq))
    return [...witnessed].every((s) => seqs.has(s)) ? d : undefined
  }, 60_000, 250, context)
  const seqs = stored.map((d) => rowOf(d.id)!.seq).sort((x, y) => x - y)
  t.equal(new Set(stored.map((d) => rowOf(d.id)?.epoch)).size, 1, 'one guest database throughout (one epoch)')
  t.equal(new Set(seqs).size, seqs.length, `${seqs.length} rows stored at the primary, each once`)
  t.same(seqs.filter((s, i) => i > 0 && s !== seqs[i - 1] + 1), [], `rows ${seqs[0]}..${seqs.at(-1)}: no gap`)
  const all = rows()
  log(`the agents sent ${all.length} deliveries (A ${all.filter((r) => r.path.endsWith('/site-a')).length}, B ${all.filter((r) => r.path.endsWith('/site-b')).length}), ${all.length - witnessed.size} repeats`)

  const { stdout } = await run('grep', ['-rla', B_HOST, a.dir]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  t.same(stdout.split('\n').filter(Boolean), [], `no file of A (logs, state, monitoring store, agent) names ${B_HOST}`)
  t.notOk(printedAtA.join('\n').includes(B_HOST), 'nor does anything A\'s command line printed')
  log(`whole test ${elapsed()}`)
})
