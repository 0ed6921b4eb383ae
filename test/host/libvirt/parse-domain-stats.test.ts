import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeDomainStatsReply } from '../../../host/libvirt/decode-domain-stats'
import { parseDomainStats, parseDomainStatsReply } from '../../../host/libvirt/parse-domain-stats'
import { parseVirshDomstats } from '../../../host/libvirt/parse-virsh-domstats'
import { XdrWriter } from '../../../host/libvirt/rpc/xdr'

// Fixtures captured from libvirtd 9.0 + QEMU 7.2 (test/support/vm/capture-stats-fixture.ts): one
// running domain with a disk and a NIC, one paused, one shut off; the RPC reply body and, right
// after it, `virsh domstats --raw` for the same groups.
const FIXTURES = join(__dirname, '..', 'fixtures')
const reply = readFileSync(join(FIXTURES, 'running-paused-shutoff.xdr'))
const virshText = readFileSync(join(FIXTURES, 'running-paused-shutoff.virsh.txt'), 'utf8')

t.test('decodes every domain of a real reply, with uuid', async t => {
  const raw = decodeDomainStatsReply(reply)
  t.same(raw.map(r => r.name).sort(), ['fedvm-test-1', 'fedvm-test-2', 'fedvm-test-3'])
  for (const r of raw) t.match(r.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
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

t.test('the RPC reply and virsh --raw carry the same fields and the same static values', async t => {
  const rpc = decodeDomainStatsReply(reply)
  const virsh = parseVirshDomstats(virshText)
  t.equal(virsh.length, rpc.length)
  for (const v of virsh) {
    const r = rpc.find(x => x.name === v.name)
    t.same([...(r?.params.keys() ?? [])].sort(), [...v.params.keys()].sort(), `${v.name}: same fields`)
    for (const key of ['state.state', 'balloon.maximum', 'block.0.name', 'block.0.capacity', 'vcpu.maximum']) {
      t.equal(r?.params.get(key), v.params.get(key), `${v.name}: ${key}`)
    }
    t.same(parseDomainStats(v).blocks.map(b => b.name), parseDomainStats({ ...v, params: r?.params ?? new Map() }).blocks.map(b => b.name))
  }
})

t.test('a truncated or malformed reply is a PROTOCOL error, not a crash', async t => {
  t.throws(() => decodeDomainStatsReply(reply.subarray(0, reply.length - 7)), { code: 'PROTOCOL' })
  t.throws(() => decodeDomainStatsReply(Buffer.from([0xff, 0xff, 0xff, 0xff])), { code: 'PROTOCOL' }, 'absurd count refused before allocating')
  const badType = new XdrWriter().uint(1).string('vm').fixedOpaque(Buffer.alloc(16)).int(1).uint(1).string('cpu.time').int(99).toBuffer()
  t.throws(() => decodeDomainStatsReply(badType), { code: 'PROTOCOL', message: /cpu\.time has unknown type 99/ })
})

t.test('unknown fields from a newer libvirt are ignored', async t => {
  const d = parseDomainStats({ name: 'x', uuid: 'u', params: new Map<string, number | string | boolean>([['state.state', 1], ['cpu.time', 5], ['future.thing', 3], ['net.0.name', 'tap0'], ['net.0.rx.bytes', 9], ['net.0.rx.new', 1], ['net.count', 1]]) })
  t.same(d.interfaces.map(i => [i.name, i.rxBytes]), [['tap0', 9]])
  t.equal(d.cpu?.timeNs, 5)
})

t.test('the one-pass reply parser gives what decoding then parsing each record gives', async t => {
  t.same(parseDomainStatsReply(reply), decodeDomainStatsReply(reply).map(parseDomainStats))
  t.throws(() => parseDomainStatsReply(reply.subarray(0, reply.length - 7)), { code: 'PROTOCOL' }, 'a truncated reply still fails')
})

t.test('field names that look like object properties are not fields', async t => {
  const d = parseDomainStats({ name: 'x', uuid: 'u', params: new Map<string, number | string | boolean>([['balloon.toString', 1], ['vcpu.0.constructor', 2], ['block.0.__proto__', 3], ['net.x.name', 'bad'], ['cpu', 4], ['state.state', 1]]) })
  t.equal(d.balloon, undefined)
  t.equal(d.vcpu, undefined)
  t.same(d.blocks, [], 'a block without a name is left out')
  t.same(d.interfaces, [])
  t.equal(d.cpu, undefined)
  t.same(d.state, { code: 1, reason: 0 })
})

t.test('more distinct field names than are remembered are still read', async t => {
  const params = new Map<string, number | string | boolean>()
  for (let i = 0; i < 3000; i++) { params.set(`block.${i}.name`, `sd${i}`); params.set(`block.${i}.rd.bytes`, i) }
  const d = parseDomainStats({ name: 'x', uuid: 'u', params })
  t.equal(d.blocks.length, 3000)
  t.same(d.blocks[2999], { name: 'sd2999', rdBytes: 2999 })
})
