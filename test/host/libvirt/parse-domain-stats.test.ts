import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ParamValue } from '../../../host/libvirt/decode-domain-stats'
import { parseDomainStatsReply } from '../../../host/libvirt/parse-domain-stats'
import { XdrWriter } from '../../../host/libvirt/rpc/xdr'
import type { DomainStats } from '../../../host/hypervisor'
import { statsReply } from '../support/stats-reply'

// Fixture captured from libvirtd 9.0 + QEMU 7.2 (test/support/vm/capture-stats-fixture.ts): the
// RPC reply body for one running domain with a disk and a NIC, one paused, one shut off.
const FIXTURES = join(__dirname, '..', 'fixtures')
const reply = readFileSync(join(FIXTURES, 'running-paused-shutoff.xdr'))
const U = '0721268a-b768-49dd-9180-49a74f86f484'

/** One domain's typed stats from a reply holding just these parameters. */
function parseOne (params: Array<[string, ParamValue]>): DomainStats {
  return parseDomainStatsReply(statsReply([{ name: 'x', uuid: U, params }]))[0]
}

t.test('decodes every domain of a real reply, with uuid', async t => {
  const all = parseDomainStatsReply(reply)
  t.same(all.map(r => r.name).sort(), ['fedvm-test-1', 'fedvm-test-2', 'fedvm-test-3'])
  for (const r of all) t.match(r.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
})

t.test('the running domain: every group, typed, in libvirt units', async t => {
  const running = parseDomainStatsReply(reply).find(d => d.name === 'fedvm-test-1')
  if (running === undefined) throw new Error('fedvm-test-1 missing')
  t.same(running.state, { code: 1, reason: 1 })
  t.ok((running.cpu?.timeNs ?? 0) > 1e9, 'cpu time in ns')
  t.equal(running.balloon?.currentKiB, 131072, '128 MiB in KiB')
  t.equal(running.balloon?.maximumKiB, 131072)
  t.ok((running.balloon?.rssKiB ?? 0) > 0 && (running.balloon?.usableKiB ?? 0) > 0, 'guest memory statistics')
  t.same(running.vcpu?.vcpus.map(v => v.index), [0])
  t.ok((running.vcpu?.vcpus[0].timeNs ?? 0) > 0, 'vcpu time')
  t.equal(running.interfaces.length, 1)
  t.equal(running.interfaces[0].name, 'vnet0')
  t.ok(running.interfaces[0].rxBytes > 0 && running.interfaces[0].txPackets > 0, 'interface counters')
  t.equal(running.blocks.length, 1)
  t.match(running.blocks[0], { name: 'vda', capacity: 8388608 })
  t.ok((running.blocks[0].wrBytes ?? 0) > 0 && (running.blocks[0].rdReqs ?? 0) > 0, 'block counters')
})

t.test('paused and shut-off domains', async t => {
  const all = parseDomainStatsReply(reply)
  t.equal(all.find(d => d.name === 'fedvm-test-2')?.state.code, 3, 'paused')
  const off = all.find(d => d.name === 'fedvm-test-3')
  t.equal(off?.state.code, 5, 'shut off')
  t.same(off?.interfaces, [], 'no interface counters')
  t.equal(off?.blocks[0]?.rdBytes, undefined, 'a disk name but no counters')
})

t.test('a truncated or malformed reply is a PROTOCOL error, not a crash', async t => {
  t.throws(() => parseDomainStatsReply(reply.subarray(0, reply.length - 7)), { code: 'PROTOCOL' })
  t.throws(() => parseDomainStatsReply(Buffer.from([0xff, 0xff, 0xff, 0xff])), { code: 'PROTOCOL' }, 'absurd count refused before allocating')
  const badType = new XdrWriter().uint(1).string('vm').fixedOpaque(Buffer.alloc(16)).int(1).uint(1).string('cpu.time').int(99).toBuffer()
  t.throws(() => parseDomainStatsReply(badType), { code: 'PROTOCOL', message: /cpu\.time has unknown type 99/ })
  const tooMany = new XdrWriter().uint(1).string('vm').fixedOpaque(Buffer.alloc(16)).int(1).uint(4097).toBuffer()
  t.throws(() => parseDomainStatsReply(tooMany), { code: 'PROTOCOL', message: /4097 items exceeds 4096/ }, 'more parameters than libvirt sends for one domain')
})

t.test('unknown fields from a newer libvirt are ignored', async t => {
  const d = parseOne([['state.state', 1], ['cpu.time', 5], ['future.thing', 3], ['net.0.name', 'tap0'], ['net.0.rx.bytes', 9], ['net.0.rx.new', 1], ['net.count', 1]])
  t.same(d.interfaces.map(i => [i.name, i.rxBytes]), [['tap0', 9]])
  t.equal(d.cpu?.timeNs, 5)
})

t.test('field names that look like object properties are not fields', async t => {
  const d = parseOne([['balloon.toString', 1], ['vcpu.0.constructor', 2], ['block.0.__proto__', 3], ['net.x.name', 'bad'], ['cpu', 4], ['state.state', 1]])
  t.equal(d.balloon, undefined)
  t.equal(d.vcpu, undefined)
  t.same(d.blocks, [], 'a block without a name is left out')
  t.same(d.interfaces, [])
  t.equal(d.cpu, undefined)
  t.same(d.state, { code: 1, reason: 0 })
})

t.test('more distinct field names than are remembered are still read', async t => {
  // 3 domains × 1,000 disks: 6,000 distinct names, beyond the 4,096 setters kept.
  const records = [0, 1, 2].map(k => {
    const params: Array<[string, ParamValue]> = []
    for (let i = k * 1000; i < (k + 1) * 1000; i++) params.push([`block.${i}.name`, `sd${i}`], [`block.${i}.rd.bytes`, i])
    return { name: `x${k}`, uuid: U, params }
  })
  const all = parseDomainStatsReply(statsReply(records))
  t.same(all.map(d => d.blocks.length), [1000, 1000, 1000])
  t.same(all[2].blocks[999], { name: 'sd2999', rdBytes: 2999 })
})
