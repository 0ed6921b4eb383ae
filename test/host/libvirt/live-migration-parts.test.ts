import t from 'tap'
import { liveDisks } from '../../../host/libvirt/live-disks'
import { checkMigrationId, libvirtSocketPath, liveParams, localSocketPath } from '../../../host/libvirt/live-params'
import { liveProgress, progressLine } from '../../../host/libvirt/live-progress'
import { liveStatusesAgree, performCompleted } from '../../../host/libvirt/live-status'
import { NEUTRAL_HOSTNAME, neutraliseCookie } from '../../../host/libvirt/migration-cookie'
import { readTypedParams, writeTypedParams } from '../../../host/libvirt/rpc/migration-params'
import { XdrReader, XdrWriter } from '../../../host/libvirt/rpc/xdr'

// The pure parts of a live migration: what crosses a site boundary and how progress reads.

const COOKIE = `<qemu-migration>
  <name>vm1</name>
  <uuid>8d0e3c55-7a0b-4f4c-9d53-0b7a1d2e3f40</uuid>
  <hostname>siteb-host-17.internal</hostname>
  <hostuuid>11111111-2222-3333-4444-555555555555</hostuuid>
  <feature name='nbd'/>
  <nbd><disk target='vda' capacity='16777216'/></nbd>
</qemu-migration>\0`

t.test('a neutralised cookie names no host and keeps everything else', async (t) => {
  const out = neutraliseCookie(Buffer.from(COOKIE), '99999999-8888-7777-6666-555555555555').toString()
  t.notMatch(out, /siteb-host-17/)
  t.notMatch(out, /11111111-2222/)
  t.match(out, `<hostname>${NEUTRAL_HOSTNAME}</hostname>`)
  t.match(out, '<hostuuid>99999999-8888-7777-6666-555555555555</hostuuid>')
  t.match(out, "<nbd><disk target='vda' capacity='16777216'/></nbd>")
  t.ok(out.endsWith('\0'), 'the terminating NUL libvirt sends stays')
  const a = neutraliseCookie(Buffer.from(COOKIE)).toString()
  const b = neutraliseCookie(Buffer.from(COOKIE)).toString()
  t.not(/<hostuuid>(.*)<\/hostuuid>/.exec(a)?.[1], /<hostuuid>(.*)<\/hostuuid>/.exec(b)?.[1], 'a fresh host UUID each time: libvirt\'s same-host check never trips')
  t.equal(neutraliseCookie(Buffer.alloc(0)).length, 0, 'an empty cookie stays empty')
})

t.test('copied disks: file disks that are writable and not shared, with their format', async (t) => {
  const xml = `<domain><devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/v/a/root.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/a/data.img'/><target dev='vdb' bus='virtio'/><shareable/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
  </devices></domain>`
  t.same(liveDisks(xml), [{ name: 'root.qcow2', path: '/v/a/root.qcow2', target: 'vda', format: 'qcow2' }])
  t.throws(() => liveDisks("<disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdc'/></disk>"), { code: 'UNSUPPORTED_VM' })
})

t.test('socket paths: the same name in each libvirtd\'s /run/libvirt, seen from here beside its socket', async (t) => {
  t.equal(libvirtSocketPath('abcdef0123456789', 'nbd'), '/run/libvirt/fedvm-live-abcdef0123456789-nbd.sock')
  t.equal(localSocketPath('qemu+unix:///system?socket=/tmp/h/run/libvirt-sock', 'abcdef0123456789', 'migration'), '/tmp/h/run/fedvm-live-abcdef0123456789-migration.sock')
  t.equal(localSocketPath('qemu:///system', 'abcdef0123456789', 'migration'), '/run/libvirt/fedvm-live-abcdef0123456789-migration.sock')
  t.same(liveParams('abcdef0123456789', 'vm1'), {
    migrate_uri: 'unix:///run/libvirt/fedvm-live-abcdef0123456789-migration.sock',
    disks_uri: 'unix:///run/libvirt/fedvm-live-abcdef0123456789-nbd.sock',
    destination_name: 'vm1'
  })
  t.match(liveParams('abcdef0123456789', 'vm1', { bandwidthMiBs: 8 }), { bandwidth: 8 }, 'a bandwidth cap is libvirt\'s bandwidth parameter, in MiB/s')
  t.throws(() => liveParams('abcdef0123456789', 'vm1', { bandwidthMiBs: 0 }), /must be an integer from 1 to/)
  t.throws(() => checkMigrationId('../../etc'), /must be 8-64/)
})

t.test('typed parameters round-trip (strings, unsigned 64-bit, booleans)', async (t) => {
  const params = { migrate_uri: 'unix:///x', bandwidth: 2 ** 40, auto: true }
  t.same(readTypedParams(new XdrReader(writeTypedParams(new XdrWriter(), params).toBuffer())), params)
})

t.test('progress from job statistics, and its line', async (t) => {
  const disks = liveProgress({ time_elapsed: 900, disk_total: 134217728, disk_remaining: 67108864, disk_bps: 33554432, memory_total: 268435456, memory_remaining: 268435456, memory_processed: 0, memory_iteration: 0 })
  t.match(disks, { phase: 'disks', remainingBytes: 335544320, totalBytes: 402653184, rateBytesPerSecond: 33554432, etaMs: 10000, iteration: 0 })
  const memory = liveProgress({ data_total: 402653184, data_remaining: 8388608, memory_processed: 260046848, memory_remaining: 8388608, memory_iteration: 2, memory_bps: 16777216, memory_dirty_rate: 250 })
  t.match(memory, { phase: 'memory', remainingBytes: 8388608, iteration: 2, dirtyPagesPerSecond: 250, etaMs: 500 })
  t.equal(progressLine(memory), 'Migration: [ 97 %] memory, 8.0 MiB of 384.0 MiB left, 16.0 MiB/s, ETA 1 s, pass 2, dirty 250 pages/s')
  t.match(liveProgress({}, true), { phase: 'done', remainingBytes: 0, etaMs: 0 })
  // While the disks copy, QEMU's memory migration has not begun and libvirt's totals leave the memory out.
  const early = liveProgress({ data_total: 134217728, data_remaining: 1048576, disk_total: 134217728, disk_remaining: 1048576, memory_total: 0, memory_iteration: 0 }, false, 268435456)
  t.match(early, { phase: 'disks', totalBytes: 402653184, remainingBytes: 269484032 }, 'the memory counted in from the start')
  const started = liveProgress({ data_total: 402653184, data_remaining: 268435456, memory_total: 268435456, memory_remaining: 268435456, memory_processed: 4096, memory_iteration: 1 }, false, 268435456)
  t.match(started, { phase: 'memory', totalBytes: 402653184, remainingBytes: 268435456 }, 'once libvirt counts it, not twice')
  t.ok(early.totalBytes - early.remainingBytes <= started.totalBytes - started.remainingBytes, 'the percentage does not drop at the change of phase')
  t.equal(liveProgress({}).etaMs, undefined, 'no rate yet: no ETA')
})

t.test('dstat = sstat for a live migration: same UUID, same disks and sizes, a completed job at both ends', async (t) => {
  const s = { uuid: 'u1', disks: [{ name: 'a.img', bytes: 1024 }, { name: 'b.qcow2', bytes: 4096 }], job: 'completed' as const }
  t.ok(liveStatusesAgree({ ...s, disks: [...s.disks].reverse() }, s), 'disk order does not matter')
  t.notOk(liveStatusesAgree({ ...s, uuid: 'u2' }, s), 'another domain')
  t.notOk(liveStatusesAgree({ ...s, disks: [{ name: 'a.img', bytes: 1024 }, { name: 'b.qcow2', bytes: 2048 }] }, s), 'a disk of another size')
  t.notOk(liveStatusesAgree({ ...s, disks: s.disks.slice(1) }, s), 'a missing disk')
  t.notOk(liveStatusesAgree({ ...s, job: 'incomplete' }, s), 'a job that did not complete')
  t.ok(performCompleted(Buffer.from('<qemu-migration><statistics><started>1</started><downtime>41</downtime></statistics></qemu-migration>')))
  t.notOk(performCompleted(Buffer.from('<qemu-migration><name>vm1</name></qemu-migration>')))
})
