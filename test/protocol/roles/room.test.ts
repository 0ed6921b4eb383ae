import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { backingFiles, relinkBackingFiles } from '../../../host/libvirt/lifecycle-disk-chain'
import { domainResources, parseDomInfos, parseNodeInfo } from '../../../host/libvirt/lifecycle-resources'
import { demandOf, vmsThatFit, withDemand } from '../../../protocol/roles/room'

const run = promisify(execFile)

// Placement by room: what a VM needs (descriptor or domain XML) against what a host has left.

t.test('the descriptor states the demand as resources {memoryMiB, vcpus}', async (t) => {
  t.same(demandOf({ id: 'vm1', resources: { memoryMiB: 512, vcpus: 2 } }), { memoryMiB: 512, vcpus: 2 })
  t.same(demandOf({ id: 'vm1', resources: { memoryMiB: 512 } }), { memoryMiB: 512 }, 'a field left out is not checked')
  t.same(demandOf({ id: 'vm1' }), {}, 'no resources: only the VM count is checked')
  t.same(demandOf(null), {})
  t.throws(() => demandOf({ resources: [] }), /descriptor\.resources must be an object/)
  t.throws(() => demandOf({ resources: { memoryMiB: '512' } }), /descriptor\.resources\.memoryMiB must be an integer/)
  t.throws(() => demandOf({ resources: { vcpus: -1 } }), /descriptor\.resources\.vcpus must be an integer/)
})

t.test('withDemand adds resources only where the descriptor has none', async (t) => {
  const own = { id: 'vm1', resources: { memoryMiB: 64 } }
  t.equal(withDemand(own, { memoryMiB: 128, vcpus: 1 }), own, 'the descriptor\'s own statement wins')
  t.same(withDemand({ id: 'vm1' }, { memoryMiB: 128, vcpus: 1 }), { id: 'vm1', resources: { memoryMiB: 128, vcpus: 1 } })
  t.same(withDemand(null, { memoryMiB: 128 }), { resources: { memoryMiB: 128 } })
  const plain = { id: 'vm1' }
  t.equal(withDemand(plain, undefined), plain, 'nothing known: unchanged')
  t.equal(withDemand(plain, {}), plain)
})

t.test('vmsThatFit: slots, bounded by free memory and vCPUs', async (t) => {
  t.equal(vmsThatFit({ used: 1, max: 4 }, { memoryMiB: 1 << 20 }), 3, 'a host that counts no memory: slots only')
  const free = { memoryMiB: 1000, vcpus: 3 }
  t.equal(vmsThatFit({ used: 0, max: 8, free }, {}), 8, 'no demand stated')
  t.equal(vmsThatFit({ used: 0, max: 8, free }, { memoryMiB: 300 }), 3, 'memory bounds it')
  t.equal(vmsThatFit({ used: 0, max: 8, free }, { memoryMiB: 300, vcpus: 2 }), 1, 'vCPUs bound it')
  t.equal(vmsThatFit({ used: 0, max: 8, free }, { memoryMiB: 1001 }), 0, 'too large: no room')
  t.equal(vmsThatFit({ used: 0, max: 8, free: { memoryMiB: -512, vcpus: 3 } }, { memoryMiB: 1 }), 0, 'overcommitted: no room')
  t.equal(vmsThatFit({ used: 9, max: 8, free }, {}), 0, 'over the VM count: no room')
  t.equal(vmsThatFit({ used: 0, max: 8, free }, { memoryMiB: 0, vcpus: 0 }), 8, 'a zero demand fits by count')
})

t.test('domain XML memory and vCPUs in libvirt\'s units', async (t) => {
  t.same(domainResources("<domain><memory unit='KiB'>131072</memory><vcpu placement='static'>2</vcpu></domain>"), { memoryMiB: 128, vcpus: 2 })
  t.same(domainResources('<domain><memory>262144</memory><vcpu>1</vcpu></domain>'), { memoryMiB: 256, vcpus: 1 }, 'KiB by default')
  t.same(domainResources('<domain><memory unit="GiB">2</memory></domain>'), { memoryMiB: 2048 }, 'no vcpu element: left out')
  t.same(domainResources("<domain><memory unit='MB'>100</memory><currentMemory unit='MiB'>50</currentMemory></domain>"), { memoryMiB: 96 }, 'decimal units, rounded up; currentMemory is not the maximum')
  t.same(domainResources("<domain><memory unit='parsec'>1</memory></domain>"), {}, 'an unknown unit says nothing')
})

t.test('virsh nodeinfo and dominfo text', async (t) => {
  const nodeinfo = 'CPU model:           x86_64\nCPU(s):              2\nCPU frequency:       2000 MHz\nMemory size:         8039780 KiB\n'
  t.same(parseNodeInfo(nodeinfo), { memoryMiB: 7851, vcpus: 2 })
  t.throws(() => parseNodeInfo('error'), /nodeinfo/)
  const dominfo = (name: string, cpus: number, kib: number): string =>
    `Id:             -\nName:           ${name}\nUUID:           0\nOS Type:        hvm\nState:          shut off\nCPU(s):         ${cpus}\nMax memory:     ${kib} KiB\nUsed memory:    ${kib} KiB\nPersistent:     yes\n\n`
  t.same(parseDomInfos(dominfo('a', 1, 131072) + dominfo('b', 4, 1048576)), [{ memoryMiB: 128, vcpus: 1 }, { memoryMiB: 1024, vcpus: 4 }])
  t.same(parseDomInfos(''), [])
})

t.test('a qcow2 overlay lists its base; copied flat, it is pointed at the copy', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fedvm-chain-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  await mkdir(join(root, 'cache'))
  await mkdir(join(root, 'vm'))
  await mkdir(join(root, 'dst'))
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(root, 'cache', 'base.qcow2'), '16M'])
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '../cache/base.qcow2', '-F', 'qcow2', join(root, 'vm', 'mid.qcow2')])
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(root, 'vm', 'mid.qcow2'), '-F', 'qcow2', join(root, 'vm', 'top.qcow2')])
  await run('qemu-img', ['create', '-q', '-f', 'raw', join(root, 'vm', 'plain.img'), '1M'])
  t.same(await backingFiles(join(root, 'vm', 'top.qcow2')), [join(root, 'vm', 'mid.qcow2'), join(root, 'cache', 'base.qcow2')], 'nearest first, absolute')
  t.same(await backingFiles(join(root, 'vm', 'plain.img')), [], 'a raw disk has none')
  for (const name of ['vm/top.qcow2', 'vm/mid.qcow2', 'cache/base.qcow2']) await run('cp', ['--sparse=always', join(root, name), join(root, 'dst')])
  await rm(join(root, 'vm'), { recursive: true })
  await relinkBackingFiles(join(root, 'dst', 'top.qcow2'), join(root, 'dst'))
  await relinkBackingFiles(join(root, 'dst', 'top.qcow2'), join(root, 'dst'))
  t.same(await backingFiles(join(root, 'dst', 'top.qcow2')), [join(root, 'dst', 'mid.qcow2'), join(root, 'dst', 'base.qcow2')], 'the whole chain resolves inside the Destination folder (twice: idempotent)')
  await run('qemu-img', ['check', '-q', join(root, 'dst', 'top.qcow2')])
  t.pass('qemu-img check passes on the relinked overlay')

  // A base that did not travel: kept when this host reaches it under the same path (shared storage), else refused.
  await mkdir(join(root, 'lone'))
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(root, 'cache', 'base.qcow2'), '-F', 'qcow2', join(root, 'lone', 'shared.qcow2')])
  await relinkBackingFiles(join(root, 'lone', 'shared.qcow2'), join(root, 'lone'))
  t.same(await backingFiles(join(root, 'lone', 'shared.qcow2')), [join(root, 'cache', 'base.qcow2')], 'a reachable shared base is left as it is')
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', join(root, 'gone', 'base.qcow2'), '-F', 'qcow2', join(root, 'lone', 'orphan.qcow2'), '16M'])
  await t.rejects(relinkBackingFiles(join(root, 'lone', 'orphan.qcow2'), join(root, 'lone')), { code: 'UNSUPPORTED_VM', message: /base image base\.qcow2 of orphan\.qcow2 did not come with it/ })
})
