import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Federation } from '../protocol/support/federation'
import { post, signAs } from '../protocol/support/signed-client'
import { ensureGuestImage } from '../support/vm/guest-image'
import { chooseDomainType } from '../support/vm/kvm-probe'
import { LibvirtHost } from '../support/vm/libvirt-host'
import { domainXml, waitGuestReady } from '../support/vm/test-domain'

// Sites whose hosts are libvirt connections, driven through real `fedvm site run`
// processes. One small TCG VM (a qcow2 overlay on a base image) goes: primary placement on site-a's
// host, site-a → site-b (usage scenario 1 across sites), then between site-b's hosts (scenario 3).
// Two libvirtds serve both sites' hosts: X holds a1 (site-a) and b2 (site-b), Y holds b1 and b3
// (site-b); hosts on one libvirtd share its domain names, so none is offered a VM another one holds.
// b3 has room for VMs by count but only 64 MiB of memory: it must never be offered the 128 MiB VM.

const run = promisify(execFile)
const BOOT_MARKER = 'fedvm-guest: modules loaded'
const MiB = 1024 * 1024

t.test('libvirt-backed sites migrate a real VM within and across sites', async (t) => {
  const started = Date.now()
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const [x, y] = await LibvirtHost.startAll(t, [{ tag: `${tag}x` }, { tag: `${tag}y` }])

  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.71', partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.72', partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  // FEDVM_SITE_LOGS=DIR keeps both sites' JSON logs (prepare / transfer / confirm timings) after the run.
  if (process.env.FEDVM_SITE_LOGS !== undefined) {
    t.teardown(async () => { for (const id of ['site-a', 'site-b']) await writeFile(join(process.env.FEDVM_SITE_LOGS!, `${id}.log`), fed.site(id).daemon?.stderr ?? '') })
  }
  // The cold path (save, files through the proxies, restore) is what this test checks: live migration has its own (live-*.test.ts).
  const libvirtHost = (site: string, id: string, on: LibvirtHost, extra: Record<string, unknown> = {}): Record<string, unknown> =>
    ({ id, vmDir: fed.vmDir(site, id), maxVms: 1, libvirt: { uri: on.uri, leaveBy: 'save' }, ...extra })
  await fed.reconfigure('site-a', c => { c.hosts = [libvirtHost('site-a', 'a1', x)] })
  await fed.reconfigure('site-b', c => { c.hosts = [libvirtHost('site-b', 'b1', y), libvirtHost('site-b', 'b2', x), libvirtHost('site-b', 'b3', y, { maxVms: 4, memoryMiB: 64 })] })
  await fed.start()
  t.comment(`libvirtds and sites up after ${Date.now() - started} ms (domain type ${type})`)

  // The VM as its owner hands it in: domain XML, a qcow2 overlay whose base image lives in another
  // folder (an image cache), and a descriptor that states no resources (the domain XML's 128 MiB count).
  const vmId = `fedvm-${tag}-vm`
  const intake = join(fed.root, 'intake')
  const cache = join(fed.root, 'image-cache')
  await mkdir(intake, { recursive: true })
  await mkdir(cache, { recursive: true })
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(cache, 'base.qcow2'), '32M'])
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(cache, 'base.qcow2'), '-F', 'qcow2', join(intake, 'disk.qcow2')])
  // A second disk, raw: 64 MiB of which only the first MiB holds data; the rest must stay holes.
  await writeFile(join(intake, 'data.img'), randomBytes(MiB))
  await run('truncate', ['-s', String(64 * MiB), join(intake, 'data.img')])
  const dataDisk = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${join(intake, 'data.img')}'/><target dev='vdb' bus='virtio'/></disk>\n    <interface`
  await writeFile(join(intake, 'domain.xml'), domainXml({ name: vmId, type, image, memoryMiB: 128, disk: join(intake, 'disk.qcow2'), consoleLog: join(intake, 'console.log') })
    .replace("type='raw'", "type='qcow2'").replace('<interface', dataDisk))
  const descriptorFile = join(fed.root, 'descriptor.json')
  await writeFile(descriptorFile, JSON.stringify({ id: vmId }))

  const placed = await fed.cli('site-a', 'place', '--vm', vmId, '--dir', intake, '--descriptor', descriptorFile)
  t.equal(placed.code, 0, placed.raw.stdout + placed.raw.stderr)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-a', local: true }, 'primary placement on site-a\'s own libvirt host')
  const aDir = join(fed.vmDir('site-a', 'a1'), vmId)
  t.equal(await state(x, vmId), 'running', 'defined and started on a1\'s libvirtd')
  await waitGuestReady({ name: vmId, uuid: '', disk: '', consoleLog: join(aDir, 'console.log') })
  const uuid = (await x.virsh('domuuid', vmId)).trim()
  t.same(JSON.parse(await readFile(join(aDir, 'descriptor.json'), 'utf8')), { id: vmId, resources: { memoryMiB: 128, vcpus: 1 } },
    'descriptor.json written beside the VM, with the resources read from its domain XML')
  t.ok(existsSync(join(aDir, 'base.qcow2')), 'the base image came along into the VM folder')
  t.ok(existsSync(join(cache, 'base.qcow2')), 'and the owner\'s base image is left where it was')
  t.same(await backingChain(join(aDir, 'disk.qcow2')), [join(aDir, 'disk.qcow2'), join(aDir, 'base.qcow2')], 'the overlay reads its base in the VM folder')
  t.comment(`placed and booted after ${Date.now() - started} ms`)

  /** The VM runs where it went (same UUID, resumed, disks as they were), and the host it left keeps nothing. */
  const arrived = async (t: Test, to: { libvirt: LibvirtHost, dir: string }, from: { libvirt: LibvirtHost, vmDir: string }): Promise<void> => {
    t.equal(await state(to.libvirt, vmId), 'running', 'running where it went')
    t.equal((await to.libvirt.virsh('domuuid', vmId)).trim(), uuid, 'same domain UUID')
    t.ok((await guestWrites(to.libvirt, vmId)).grew, 'the guest writes its disk there')
    t.equal(countOf(await readFile(join(to.dir, 'console.log'), 'utf8').catch(() => ''), BOOT_MARKER), 0, 'it resumed from its saved state (no boot there)')
    t.same(await backingChain(join(to.dir, 'disk.qcow2')), [join(to.dir, 'disk.qcow2'), join(to.dir, 'base.qcow2')], 'the backing chain was carried and relinked')
    const data = await stat(join(to.dir, 'data.img'))
    t.equal(data.size, 64 * MiB, 'the raw data disk keeps its size')
    t.ok(data.blocks * 512 <= 9 * MiB, `and its holes (${data.blocks * 512} bytes allocated; one 8 MiB transfer chunk holds the data)`)
    t.notMatch(await to.libvirt.virsh('dumpxml', vmId), from.vmDir, 'no path of the host it left in the running definition')
    t.equal((await from.libvirt.virsh('list', '--all', '--name')).trim(), '', 'the libvirtd it left keeps no domain')
    t.same(await visible(from.vmDir), [], 'the host it left keeps no VM folder')
  }

  await t.test('scenario 1 across sites: site-a\'s VM moves to site-b\'s libvirt host', async t => {
    const mark = Date.now()
    const moved = await fed.cli('site-a', 'migrate', '--vm', vmId)
    const migrateMs = Date.now() - mark
    t.equal(moved.code, 0, moved.raw.stdout + moved.raw.stderr)
    // a1 holds the VM; b2 shares its libvirtd (the name is taken); b3 lacks memory: b1 is the only offer.
    t.match(moved.json, { outcome: 'migrated', destination: 'site-b', local: false, digestsAgree: true, offers: 1 })
    const bDir = join(fed.vmDir('site-b', 'b1'), vmId)
    await arrived(t, { libvirt: y, dir: bDir }, { libvirt: x, vmDir: fed.vmDir('site-a', 'a1') })
    t.same(JSON.parse(await readFile(join(bDir, 'descriptor.json'), 'utf8')), { id: vmId, resources: { memoryMiB: 128, vcpus: 1 } }, 'the descriptor travelled')
    t.same((await status(fed, 'site-a')).locations, [{ vmId, kind: 'partner', target: 'site-b', upstream: null }], 'site-a records only the partner')
    t.match((await status(fed, 'site-b')).locations, [{ vmId, kind: 'host', target: 'b1', upstream: 'site-a' }])
    t.notOk(existsSync(join(fed.vmDir('site-b', 'b3'), vmId)), 'b3 never received anything')
    t.comment(`site-a → site-b: fedvm migrate ${migrateMs} ms (${stepTimes(fed, 'site-a', 'site-b', vmId)})`)
  })

  await t.test('scenario 3: site-b moves the VM to its other host', async t => {
    const mark = Date.now()
    const moved = await fed.cli('site-b', 'migrate', '--vm', vmId)
    const migrateMs = Date.now() - mark
    t.equal(moved.code, 0, moved.raw.stdout + moved.raw.stderr)
    // b1 holds the VM, b3 still lacks memory: b2 offers, and site-a (a1 is empty now); the own host wins.
    t.match(moved.json, { outcome: 'migrated', destination: 'site-b', local: true, digestsAgree: true, offers: 2 })
    await arrived(t, { libvirt: x, dir: join(fed.vmDir('site-b', 'b2'), vmId) }, { libvirt: y, vmDir: fed.vmDir('site-b', 'b1') })
    t.match((await status(fed, 'site-b')).locations, [{ vmId, kind: 'host', target: 'b2', upstream: 'site-a' }], 'upstream kept')
    t.same((await status(fed, 'site-a')).locations, [{ vmId, kind: 'partner', target: 'site-b', upstream: null }], 'site-a never learned b1 or b2')
    t.comment(`b1 → b2: fedvm migrate ${migrateMs} ms (${stepTimes(fed, 'site-b', 'site-b', vmId)})`)
  })

  await t.test('placement: a host without room for the descriptor\'s memory is never offered', async t => {
    const ask = async (resources: Record<string, number>): Promise<number> => {
      const body = { vmId: `other-${tag}`, descriptor: { id: `other-${tag}`, resources } }
      const answer = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', body, { budget: 0 }))
      t.equal(answer.status, 200, JSON.stringify(answer.json))
      return (answer.json.offers as unknown[]).length
    }
    // Now x runs the VM (b2 holds it), y is empty: b1 (the machine's memory) and b3 (64 MiB) by memory.
    t.equal(await ask({ memoryMiB: 32, vcpus: 1 }), 2, '32 MiB: b1 and b3')
    t.equal(await ask({ memoryMiB: 128, vcpus: 1 }), 1, '128 MiB: only b1')
    t.equal(await ask({ memoryMiB: 1 << 30 }), 0, 'more than any machine: none')
    t.equal(await ask({ vcpus: 100_000 }), 0, 'more vCPUs than any machine: none')
    const bad = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'v', descriptor: { resources: { memoryMiB: 'lots' } } }, { budget: 0 }))
    t.equal(bad.status, 400, 'malformed resources: a problem document')
    t.match(bad.json, { code: 'bad-request', detail: /descriptor\.resources\.memoryMiB/ })
  })

  t.comment(`whole test ${Date.now() - started} ms`)
})

/** What `fedvm site status` asks (signed by the site itself), without starting a CLI process each time. */
async function status (fed: Federation, site: string): Promise<{ locations: unknown[] }> {
  const answer = await post(fed, site, 'admin-status', await signAs(fed, site, site, 'admin-status', {}, { budget: 0 }))
  if (answer.status !== 200) throw new Error(`admin-status of ${site}: ${answer.status} ${JSON.stringify(answer.json)}`)
  return answer.json
}

async function state (host: LibvirtHost, vm: string): Promise<string> {
  return (await host.virsh('domstate', vm)).trim()
}

/** Folders of a VM directory that are VMs (book-keeping folders start with a dot). */
async function visible (dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).filter(n => !n.startsWith('.'))
}

async function backingChain (disk: string): Promise<string[]> {
  const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', '--backing-chain', disk])
  return (JSON.parse(stdout) as Array<{ filename: string }>).map(i => i.filename)
}

function countOf (text: string, needle: string): number {
  return text.split(needle).length - 1
}

/** The guest's loop writes its disk every second: the write count grows while it runs. */
async function guestWrites (host: LibvirtHost, vm: string): Promise<{ grew: boolean }> {
  const writes = async (): Promise<number> => Number(/vda wr_req (\d+)/.exec(await host.virsh('domblkstat', vm, 'vda'))?.[1] ?? -1)
  const first = await writes()
  const until = Date.now() + 20_000
  while (Date.now() < until) {
    await new Promise(resolve => setTimeout(resolve, 500))
    if (await writes() > first) return { grew: true }
  }
  return { grew: false }
}

/** prepare / transfer / define+start from the sites' logs (the last migration of the VM). */
function stepTimes (fed: Federation, source: string, destination: string, vm: string): string {
  const last = (site: string, event: string): Record<string, unknown> | undefined => fed.daemon(site).events().filter(e => e.event === event && e.vm === vm).at(-1)
  const prepared = last(source, 'prepared-for-leaving')
  const received = last(destination, 'transfer-received')
  return `prepare ${String(prepared?.ms)} ms, transfer ${String(received?.pullMs)} ms, define+start ${String(received?.confirmMs)} ms, ${String(received?.bytes)} bytes`
}
