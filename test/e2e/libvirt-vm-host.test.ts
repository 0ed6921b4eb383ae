import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { LibvirtVmHost } from '../../host/vm-folder/libvirt-host'
import { ensureGuestImage } from '../support/vm/guest-image'
import { chooseDomainType } from '../support/vm/kvm-probe'
import { LibvirtHost } from '../support/vm/libvirt-host'
import { domainXml, waitGuestReady } from '../support/vm/test-domain'

// The VmHost the protocol migrates through, on a real libvirtd with a small TCG VM.
// One libvirtd holds both "hosts" (two VM directories); a plain sparse copy stands in for the proxy.

const run = promisify(execFile)
const MiB = 1024 * 1024
const BOOT_MARKER = 'fedvm-guest: modules loaded'

t.test('a libvirt VM leaves one VM host and runs again on another', async t => {
  const started = Date.now()
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  // Two libvirt hosts, each its own libvirtd in its own namespaces, as two real hosts would be.
  const [host, other] = await LibvirtHost.startAll(t, [{ tag: `${tag}a` }, { tag: `${tag}b` }])
  const root = await mkdtemp(join(tmpdir(), 'fedvm-vmhost-'))
  t.teardown(async () => await rm(root, { recursive: true, force: true }))
  t.comment(`libvirtds answering after ${Date.now() - started} ms (domain type ${type})`)

  const vmId = `fedvm-${tag}-mig`
  const srcDir = join(root, 'a')
  const dstDir = join(root, 'b')
  const src = new LibvirtVmHost({ id: 'host-a', uri: host.uri, vmDir: srcDir, maxVms: 2 })
  const dst = new LibvirtVmHost({ id: 'host-b', uri: other.uri, vmDir: dstDir, maxVms: 2 })

  // The VM as the Source keeps it: everything in srcDir/ID, a 32 MiB sparse raw disk, a descriptor.
  const vmFolder = join(srcDir, vmId)
  await mkdir(vmFolder, { recursive: true })
  const disk = join(vmFolder, 'disk.img')
  const fd = await open(disk, 'w')
  await fd.truncate(32 * MiB)
  await fd.close()
  await writeFile(join(vmFolder, 'descriptor.json'), JSON.stringify({ id: vmId }))
  // Plus the KPI feed's virtio-serial channel, whose socket lives in the VM directory.
  const channel = `<channel type='unix'><source mode='bind' path='${join(vmFolder, 'kpi.sock')}'/><target type='virtio' name='org.fedvm.kpi'/></channel>\n  </devices>`
  await writeFile(join(vmFolder, 'define.xml'), domainXml({ name: vmId, type, image, memoryMiB: 128, disk, consoleLog: join(vmFolder, 'console.log') }).replace('</devices>', channel))
  await host.virsh('define', join(vmFolder, 'define.xml'))
  await host.virsh('start', vmId)
  await waitGuestReady({ name: vmId, uuid: '', disk, consoleLog: join(vmFolder, 'console.log') })
  const uuid = (await host.virsh('domuuid', vmId)).trim()
  t.comment(`guest ready after ${Date.now() - started} ms`)
  const capacity = await src.capacity()
  t.match(capacity, { used: 1, max: 2 }, 'capacity counts the one domain')
  const machine = /Memory size:\s*(\d+) KiB/.exec(await host.virsh('nodeinfo'))
  t.equal(capacity.free?.memoryMiB, Math.floor(Number(machine?.[1]) / 1024) - 128, 'free memory: the machine\'s less the domain\'s 128 MiB')
  t.ok(await src.has(vmId), 'the Source has the VM')
  t.same(await src.demand(vmId), { memoryMiB: 128, vcpus: 1 }, 'its demand, from the domain definition')
  t.equal(await src.demand('no-such-vm'), undefined, 'no demand for a VM it does not have')

  await t.test('prepareForLeaving saves it; stayHere resumes it without a reboot', async t => {
    await src.prepareForLeaving(vmId)
    t.equal(await state(host, vmId), 'shut off', 'saved: shut off')
    t.ok(existsSync(join(vmFolder, 'saved-state')), 'a saved state file in the VM directory')
    await src.prepareForLeaving(vmId)
    t.equal(await state(host, vmId), 'shut off', 'prepareForLeaving again changes nothing')
    await src.stayHere(vmId)
    t.equal(await state(host, vmId), 'running', 'running again')
    t.notOk(existsSync(join(vmFolder, 'saved-state')), 'the saved state is gone (a later restore would roll the disk back)')
    await src.stayHere(vmId)
    t.equal(await state(host, vmId), 'running', 'stayHere again changes nothing')
    const w = await guestWrites(host, vmId)
    t.ok(w.now > w.first, `the guest writes its disk (wr_req ${w.first} → ${w.now})`)
    t.ok(countOf(await readFile(join(vmFolder, 'console.log'), 'utf8'), BOOT_MARKER) <= 1, 'the guest did not boot again: it resumed')
  })

  await t.test('migrate: prepare, list, copy sparsely, release the Source, confirm', async t => {
    let mark = Date.now()
    await src.prepareForLeaving(vmId)
    const prepareMs = Date.now() - mark
    const files = await src.listFiles(vmId)
    t.same(files.map(f => f.name), ['descriptor.json', 'disk.img', 'domain.xml', 'saved-state'], 'domain XML, disk, saved state and descriptor, as flat names')
    for (const f of files) t.equal((await stat(f.path)).size, f.size, `${f.name}: size as listed`)
    t.equal(files.find(f => f.name === 'disk.img')?.size, 32 * MiB, 'the disk keeps its size')
    const saved = files.find(f => f.name === 'saved-state')?.size ?? 0
    t.ok(saved > MiB, `saved state ${(saved / MiB).toFixed(1)} MiB`)

    mark = Date.now()
    const incoming = await dst.receive(vmId)
    t.equal(await dst.receive(vmId), incoming, 'receive is idempotent')
    for (const f of files) await run('cp', ['--sparse=always', f.path, join(incoming, f.name)])
    const copyMs = Date.now() - mark
    const copied = await stat(join(incoming, 'disk.img'))
    t.ok(copied.blocks * 512 < 4 * MiB, `the copied disk keeps its holes: ${copied.blocks * 512} bytes allocated of ${copied.size}`)
    t.notOk(await dst.has(vmId), 'received is not had before confirm')

    mark = Date.now()
    await dst.confirm(vmId)
    const confirmMs = Date.now() - mark
    t.ok(await dst.has(vmId), 'the Destination has the VM')
    t.equal(await state(other, vmId), 'running', 'running at the Destination')
    t.equal((await other.virsh('domuuid', vmId)).trim(), uuid, 'same domain uuid')
    await dst.confirm(vmId)
    t.equal(await state(other, vmId), 'running', 'confirm again changes nothing')
    t.equal(await state(host, vmId), 'shut off', 'the Source copy waits, saved, until the verification')

    // The Controller's verification succeeded: the Source removes its copy.
    await src.release(vmId)
    await src.release(vmId)
    t.notOk(await src.has(vmId), 'the Source no longer has the VM')
    t.equal((await host.virsh('list', '--all', '--name')).trim(), '', 'no domain left at the Source')
    t.notOk(existsSync(vmFolder), 'the Source removed the VM directory')
    const xml = await other.virsh('dumpxml', vmId)
    const dstFolder = join(dstDir, vmId)
    t.match(xml, `<source file='${join(dstFolder, 'disk.img')}'`, 'the disk path is rewritten to the Destination VM directory')
    t.match(xml, `<source path='${join(dstFolder, 'console.log')}'`, 'the serial log path too')
    t.match(xml, `<source mode='bind' path='${join(dstFolder, 'kpi.sock')}'/>`, 'the channel socket path too')
    t.ok((await stat(join(dstFolder, 'kpi.sock'))).isSocket(), 'QEMU listens on the channel socket in the Destination VM directory')
    t.notMatch(xml, srcDir, 'no path of the Source is left')
    t.notOk(existsSync(join(dstFolder, 'saved-state')), 'the restored saved state is removed')
    t.notOk(existsSync(join(dstDir, '.incoming', vmId)), 'nothing left in incoming')
    const w = await guestWrites(other, vmId)
    t.ok(w.now > w.first, `the guest writes its disk at the Destination (wr_req ${w.first} → ${w.now})`)
    const console = await readFile(join(dstFolder, 'console.log'), 'utf8').catch(() => '')
    t.equal(countOf(console, BOOT_MARKER), 0, 'the guest did not boot at the Destination: it resumed from the saved state')
    t.comment(`prepare (save) ${prepareMs} ms, copy ${copyMs} ms, define+restore ${confirmMs} ms, saved state ${(saved / MiB).toFixed(1)} MiB`)
  })

  await t.test('a transfer back whose restore fails: rolled back, abandoned, nothing left; the VM stays where it runs', async t => {
    await dst.prepareForLeaving(vmId)
    const incoming = await src.receive(vmId)
    for (const f of await dst.listFiles(vmId)) await run('cp', ['--sparse=always', f.path, join(incoming, f.name)])
    // A saved state cut in half: defining works, restoring does not.
    const saved = join(incoming, 'saved-state')
    await run('truncate', ['-s', String(Math.floor((await stat(saved)).size / 2)), saved])
    await t.rejects(src.confirm(vmId), /restore/, 'confirm fails at restore')
    t.equal((await host.virsh('list', '--all', '--name')).trim(), '', 'the failed confirm left no domain behind')
    t.notOk(await src.has(vmId), 'and the host does not claim the VM')
    t.ok(existsSync(join(incoming, 'domain.xml')), 'the received files are back in incoming (a retry or abandon decides)')
    await src.abandon(vmId)
    await src.abandon(vmId)
    t.notOk(existsSync(incoming), 'abandon removed the received files')
    t.same((await readdir(srcDir)).filter(n => !n.startsWith('.')), [], 'no VM directory at the abandoned host')
    await dst.stayHere(vmId)
    t.equal(await state(other, vmId), 'running', 'the VM runs again where it was')
    t.ok(await dst.has(vmId), 'and is still had there')
  })

  await t.test('leaveBy shutdown: powered off (destroyed when the guest ignores it), no saved state; stayHere boots it', async t => {
    // This guest's busybox init ignores ACPI power-off: the host destroys it after the timeout.
    const cold = new LibvirtVmHost({ id: 'host-b', uri: other.uri, vmDir: dstDir, maxVms: 2, leaveBy: 'shutdown', shutdownTimeoutMs: 1500 })
    await cold.prepareForLeaving(vmId)
    t.equal(await state(other, vmId), 'shut off', 'shut off')
    t.same((await cold.listFiles(vmId)).map(f => f.name), ['descriptor.json', 'disk.img', 'domain.xml'], 'no saved state to carry')
    const consoleLog = join(dstDir, vmId, 'console.log')
    await cold.stayHere(vmId)
    t.equal(await state(other, vmId), 'running', 'started again')
    await waitGuestReady({ name: vmId, uuid: '', disk: '', consoleLog })
    t.equal(countOf(await readFile(consoleLog, 'utf8'), BOOT_MARKER), 1, 'it booted (a cold start, as asked)')
  })

  await t.test('a cold migration back (no saved state): the Destination starts it', async t => {
    const cold = new LibvirtVmHost({ id: 'host-b', uri: other.uri, vmDir: dstDir, maxVms: 2, leaveBy: 'shutdown', shutdownTimeoutMs: 1500 })
    await cold.prepareForLeaving(vmId)
    const incoming = await src.receive(vmId)
    for (const f of await cold.listFiles(vmId)) await run('cp', ['--sparse=always', f.path, join(incoming, f.name)])
    await src.confirm(vmId)
    t.equal(await state(host, vmId), 'running', 'running back at the first host')
    await waitGuestReady({ name: vmId, uuid: '', disk: '', consoleLog: join(srcDir, vmId, 'console.log') })
    t.pass('booted from the copied disk')
    await cold.release(vmId)
    t.equal((await other.virsh('list', '--all', '--name')).trim(), '', 'no domain left at the second host')
    t.same((await readdir(dstDir)).filter(n => !n.startsWith('.')), [], 'no VM directory left there')
    t.match(await src.capacity(), { used: 1, max: 2 }, 'the first host counts it again')
  })

  t.comment(`whole test ${Date.now() - started} ms`)
})

async function state (host: LibvirtHost, vm: string): Promise<string> {
  return (await host.virsh('domstate', vm)).trim()
}

function countOf (text: string, needle: string): number {
  return text.split(needle).length - 1
}

/** The guest's loop writes its disk every second: the write count grows when it runs. */
async function guestWrites (host: LibvirtHost, vm: string): Promise<{ first: number, now: number }> {
  const writes = async (): Promise<number> => Number(/vda wr_req (\d+)/.exec(await host.virsh('domblkstat', vm, 'vda'))?.[1] ?? -1)
  const first = await writes()
  const until = Date.now() + 15_000
  let now = first
  while (now <= first && Date.now() < until) {
    await new Promise(resolve => setTimeout(resolve, 500))
    now = await writes()
  }
  return { first, now }
}
