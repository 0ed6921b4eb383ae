import t from 'tap'
import { randomBytes } from 'node:crypto'
import { encodeSetMemoryFlags, encodeSetVcpusFlags } from '../../../host/libvirt/rpc/domain-control'
import { LibvirtControl } from '../../../host/vm-folder/libvirt-control'
import { RunStateRefused } from '../../../host/vm-folder/vm-control'
import { ensureGuestImage } from '../../support/vm/guest-image'
import { chooseDomainType } from '../../support/vm/kvm-probe'
import { LibvirtHost } from '../../support/vm/libvirt-host'
import { startTestDomain } from '../../support/vm/test-domain'

// The Control interface on a libvirt host: run state and resources of a running domain, over
// libvirt's remote protocol, on a real libvirtd.

t.test('argument encodings (remote_protocol.x)', async (t) => {
  const domain = { name: 'd', uuid: '07070707-0707-0707-0707-070707070707', id: 3 }
  const memory = encodeSetMemoryFlags(domain, 96 * 1024, 1)
  t.same([...memory.subarray(memory.length - 12)], [0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 1], 'unsigned hyper KiB, then flags (AFFECT_LIVE)')
  const vcpus = encodeSetVcpusFlags(domain, 2, 1)
  t.same([...vcpus.subarray(vcpus.length - 8)], [0, 0, 0, 2, 0, 0, 0, 1], 'unsigned nvcpus, then flags')
})

t.test('suspend, resume, balloon and vCPUs of a running domain', async (t) => {
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const [host] = await LibvirtHost.startAll(t, [{ tag: `c${randomBytes(2).toString('hex')}` }])
  const name = `fedvm-control-${randomBytes(3).toString('hex')}`
  await startTestDomain(host, { name, image, type, memoryMiB: 128, paused: true })
  const control = new LibvirtControl(host.uri, 5_000)

  t.equal(await control.state(name), 'paused', 'started paused')
  t.equal(await control.changeRunState(name, 'resume'), 'running')
  t.equal(await control.changeRunState(name, 'resume'), 'running', 'a repeated resume is answered again')
  t.equal(await control.changeRunState(name, 'suspend'), 'paused')
  t.equal((await host.virsh('domstate', name)).trim(), 'paused', 'libvirt agrees')
  await t.rejects(control.changeRunState(name, 'start'), RunStateRefused, 'a paused VM is resumed, not started')
  t.equal(await control.changeRunState(name, 'resume'), 'running')

  const lower = await control.applyResources(name, { memoryMiB: 96 })
  t.match(lower, { memoryMiB: { applied: true } }, 'the balloon target goes down to 96 MiB')
  // The guest's balloon driver gives the memory back in its own time: libvirt took the target.
  t.comment((await host.virsh('dominfo', name)).split('\n').filter((l) => /memory/i.test(l)).join('; '))
  const beyond = await control.applyResources(name, { memoryMiB: 512, vcpus: 2 })
  t.match(beyond, { memoryMiB: { applied: false, detail: /libvirt refused/ }, vcpus: { applied: false, detail: /libvirt refused/ } }, 'above the maximum memory and vCPUs: refused, with libvirt\'s reason')
  t.comment(JSON.stringify(beyond))
})
