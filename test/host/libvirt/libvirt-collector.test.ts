import t from 'tap'
import { Registry } from 'prom-client'
import { registerCollectors } from '../../../agent/collect'
import type { Sample } from '../../../host/collector'
import { FakeHypervisor } from '../../../host/fake/fake-hypervisor'
import { LibvirtCollector } from '../../../host/libvirt/libvirt-collector'
import { runningStats } from '../support/sample-stats'

const A = '11111111-1111-4111-8111-111111111111'
const B = '22222222-2222-4222-8222-222222222222'

function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}
const forUuid = (samples: Sample[], uuid: string): string[] => samples.filter(s => s.labels.uuid === uuid).map(s => s.name)
const signal = (): AbortSignal => new AbortController().signal

t.test('base units and labels', async t => {
  const hv = new FakeHypervisor()
  hv.define(runningStats('a', A, 12.5))
  const samples = await new LibvirtCollector({ hypervisor: hv }).collect(signal())
  const dom = { domain: 'a', uuid: A }
  t.equal(value(samples, 'libvirt_up'), 1)
  t.equal(value(samples, 'libvirt_domain_info_cpu_time_seconds_total', dom), 12.5, 'ns → s')
  t.equal(value(samples, 'libvirt_domain_info_memory_usage_bytes', dom), 128 * 1024 * 1024, 'KiB → bytes')
  t.equal(value(samples, 'libvirt_domain_info_maximum_memory_bytes', dom), 256 * 1024 * 1024)
  t.equal(value(samples, 'libvirt_domain_memory_stats_rss_bytes', dom), 250000 * 1024)
  t.equal(value(samples, 'libvirt_domain_memory_stats_used_percent', dom), 25, '(available - usable) / available')
  t.equal(value(samples, 'libvirt_domain_vcpu_delay_seconds_total', { ...dom, vcpu: '0' }), 2)
  t.equal(value(samples, 'libvirt_domain_block_stats_write_time_seconds_total', { ...dom, target_device: 'vda' }), 0.004)
  t.equal(value(samples, 'libvirt_domain_block_stats_capacity_bytes', { ...dom, target_device: 'vda' }), 8388608)
  t.equal(value(samples, 'libvirt_domain_interface_stats_transmit_drops_total', { ...dom, target_device: 'vnet0' }), 1)
  for (const s of samples) {
    if (s.name !== 'libvirt_up') t.same(Object.keys(s.labels).slice(0, 2), ['domain', 'uuid'], `${s.name} has domain and uuid`)
    t.equal(s.type === 'counter', s.name.endsWith('_total'), `${s.name}: counters and only counters end in _total`)
  }
})

t.test('domains that appear, stop and vanish between collections', async t => {
  const hv = new FakeHypervisor()
  const c = new LibvirtCollector({ hypervisor: hv })
  hv.define(runningStats('a', A))
  t.equal(forUuid(await c.collect(signal()), B).length, 0, 'b not there yet')
  hv.define(runningStats('b', B))
  t.ok(forUuid(await c.collect(signal()), B).length > 30, 'b appears')
  hv.stop(B)
  t.same(forUuid(await c.collect(signal()), B), ['libvirt_domain_info_state'], 'stopped: only its state')
  hv.undefine(B)
  const after = await c.collect(signal())
  t.same(forUuid(after, B), [], 'undefined: gone')
  t.ok(forUuid(after, A).length > 30, 'a unaffected throughout')
})

t.test('a stuck domain is reported timed out, the others within the deadline, and it comes back', async t => {
  const hv = new FakeHypervisor()
  const logs: string[] = []
  const c = new LibvirtCollector({ hypervisor: hv, statsTimeoutMs: 100, log: m => logs.push(m) })
  hv.define(runningStats('a', A))
  const b = hv.define(runningStats('b', B))
  b.stuck = true
  const begin = Date.now()
  const first = await c.collect(signal())
  t.ok(Date.now() - begin < 500, 'one deadline, then the others are read again at once')
  t.same(forUuid(first, B), ['libvirt_domain_timed_out'])
  t.ok(forUuid(first, A).length > 30, 'a reported')
  t.match(logs[0], /domain b .* is stuck: control occupied/)
  const callsBefore = hv.calls
  const vcpuCallsBefore = hv.vcpuCalls
  const begin2 = Date.now()
  const second = await c.collect(signal())
  t.ok(Date.now() - begin2 < 50, 'next collection does not wait for the stuck domain')
  t.same(forUuid(second, B), ['libvirt_domain_timed_out'])
  t.ok(hv.calls - callsBefore <= 3 + hv.vcpuCalls - vcpuCallsBefore, 'recheck + list + bulk, no per-domain stats calls (but the vCPU reads of the kept vcpu group)')
  t.equal(hv.vcpuCalls - vcpuCallsBefore, 1, 'the vCPUs of the running domain only, not of the stuck one')
  b.stuck = false
  const third = await c.collect(signal())
  t.ok(forUuid(third, B).length > 30, 'recovered: all its series again')
  t.equal(value(third, 'libvirt_domain_timed_out'), undefined)
})

t.test('a stuck domain that vanishes is forgotten', async t => {
  const hv = new FakeHypervisor()
  const c = new LibvirtCollector({ hypervisor: hv, statsTimeoutMs: 50 })
  hv.define(runningStats('a', A))
  hv.define(runningStats('b', B)).stuck = true
  await c.collect(signal())
  hv.undefine(B)
  t.same(forUuid(await c.collect(signal()), B), [])
})

t.test('libvirtd down: libvirt_up 0, logged; back: 1', async t => {
  const hv = new FakeHypervisor()
  const logs: string[] = []
  const c = new LibvirtCollector({ hypervisor: hv, log: m => logs.push(m) })
  hv.define(runningStats('a', A))
  hv.down = true
  t.same(await c.collect(signal()), [{ name: 'libvirt_up', help: (await c.collect(signal()))[0].help, type: 'gauge', labels: {}, value: 0 }])
  t.match(logs[0], /libvirt collection failed: fake libvirtd is down/)
  hv.down = false
  t.equal(value(await c.collect(signal()), 'libvirt_up'), 1)
})

t.test('the core\'s deadline (signal) rejects the collection', async t => {
  const hv = new FakeHypervisor()
  hv.define(runningStats('a', A)).stuck = true
  const controller = new AbortController()
  setTimeout(() => controller.abort(new Error('core deadline')), 30)
  await t.rejects(new LibvirtCollector({ hypervisor: hv, statsTimeoutMs: 10_000 }).collect(controller.signal), { code: 'ABORTED' })
})

t.test('every family the collector emits is declared up front', async t => {
  const hv = new FakeHypervisor()
  hv.define(runningStats('a', A))
  hv.define(runningStats('b', B)).stuck = true
  const c = new LibvirtCollector({ hypervisor: hv, statsTimeoutMs: 50 })
  const declared = new Set(c.families.map(f => f.name))
  for (const s of await c.collect(signal())) t.ok(declared.has(s.name), `${s.name} declared`)
})

t.test('/metrics shows seconds and percents without binary rounding noise', async t => {
  const hv = new FakeHypervisor()
  const stats = runningStats('a', A)
  stats.cpu = { timeNs: 967795000 }
  stats.vcpu = { current: 1, maximum: 1, vcpus: [{ index: 0, timeNs: 300000000, waitNs: 100000000, delayNs: 700000000 }] }
  stats.blocks[0].wrTimesNs = 123456789
  stats.balloon = { currentKiB: 131072, maximumKiB: 131072, availableKiB: 100000, usableKiB: 70000 }
  hv.define(stats)
  const registry = new Registry()
  registerCollectors(registry, [new LibvirtCollector({ hypervisor: hv })])
  const text = await registry.metrics()
  const dom = `domain="a",uuid="${A}"`
  const lines = [
    `libvirt_domain_info_cpu_time_seconds_total{${dom}} 0.967795`,
    `libvirt_domain_vcpu_time_seconds_total{${dom},vcpu="0"} 0.3`,
    `libvirt_domain_vcpu_wait_seconds_total{${dom},vcpu="0"} 0.1`,
    `libvirt_domain_vcpu_delay_seconds_total{${dom},vcpu="0"} 0.7`,
    `libvirt_domain_block_stats_write_time_seconds_total{${dom},target_device="vda"} 0.123456789`,
    `libvirt_domain_memory_stats_used_percent{${dom}} 30`
  ]
  for (const line of lines) t.ok(text.split('\n').includes(line), line)
})

const uuidOf = (i: number): string => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`

t.test('the domains are read in parallel bulk calls that together ask for each domain once', async t => {
  const hv = new FakeHypervisor()
  for (let i = 0; i < 12; i++) hv.define(runningStats(`d${i}`, uuidOf(i)))
  hv.define(runningStats('off', uuidOf(99)))
  hv.stop(uuidOf(99))
  const samples = await new LibvirtCollector({ hypervisor: hv, concurrency: 3 }).collect(signal())
  t.equal(hv.statsRequests.length, 3, 'three calls')
  t.equal(hv.maxStatsInFlight, 3, 'all in flight at once')
  const asked = hv.statsRequests.flatMap(r => r ?? [])
  t.same([...asked].sort(), [...Array.from({ length: 12 }, (_, i) => uuidOf(i)), uuidOf(99)].sort(), 'every domain asked for once')
  t.same(hv.statsRequests.map(r => r?.filter(u => u !== uuidOf(99)).length), [4, 4, 4], 'the running domains dealt out evenly')
  for (let i = 0; i < 12; i++) t.ok(forUuid(samples, uuidOf(i)).length > 30, `d${i} reported`)
  t.same(forUuid(samples, uuidOf(99)), ['libvirt_domain_info_state'], 'the shut-off domain: its state')
})

t.test('few domains: one call; concurrency 1 and nothing kept: one call for all, without listing first', async t => {
  const hv = new FakeHypervisor()
  for (let i = 0; i < 3; i++) hv.define(runningStats(`d${i}`, uuidOf(i)))
  await new LibvirtCollector({ hypervisor: hv }).collect(signal())
  t.equal(hv.statsRequests.length, 1, 'three domains are not worth a second call')
  const single = new FakeHypervisor()
  for (let i = 0; i < 12; i++) single.define(runningStats(`d${i}`, uuidOf(i)))
  await new LibvirtCollector({ hypervisor: single, concurrency: 1, keptGroups: [] }).collect(signal())
  t.same(single.statsRequests, [undefined], 'one call for all domains')
  t.equal(single.calls, 1, 'and nothing else')
  t.throws(() => new LibvirtCollector({ hypervisor: single, concurrency: 0 }), /concurrency must be a positive integer, got 0/)
})

t.test('a stuck domain delays only its own call: the others are kept, its part is read again without it', async t => {
  const hv = new FakeHypervisor()
  for (let i = 0; i < 12; i++) hv.define(runningStats(`d${i}`, uuidOf(i)))
  hv.domains.get(uuidOf(4))!.stuck = true
  const c = new LibvirtCollector({ hypervisor: hv, statsTimeoutMs: 100, concurrency: 3 })
  const samples = await c.collect(signal())
  t.equal(hv.statsRequests.length, 4, 'three calls, then one again')
  const late = hv.statsRequests.slice(0, 3).find(r => r?.includes(uuidOf(4)))
  t.same(hv.statsRequests[3], late?.filter(u => u !== uuidOf(4)), 'only the late part is read again, without the stuck domain')
  t.same(forUuid(samples, uuidOf(4)), ['libvirt_domain_timed_out'])
  for (let i = 0; i < 12; i++) if (i !== 4) t.ok(forUuid(samples, uuidOf(i)).length > 30, `d${i} reported`)
})

t.test('every active domain stuck: no bulk call asks for them again', async t => {
  const hv = new FakeHypervisor()
  hv.define(runningStats('a', A)).stuck = true
  const c = new LibvirtCollector({ hypervisor: hv, statsTimeoutMs: 50 })
  t.same(forUuid(await c.collect(signal()), A), ['libvirt_domain_timed_out'])
  const begin = Date.now()
  const again = await c.collect(signal())
  t.ok(Date.now() - begin < 40, 'the next collection does not wait on it')
  t.equal(value(again, 'libvirt_up'), 1)
  t.same(forUuid(again, A), ['libvirt_domain_timed_out'])
  t.equal(hv.statsRequests.length, 1, 'no bulk call since the first: none for an empty list (libvirt reads it as every domain)')
})

t.test('kept groups: read with the rest once older than keptMaxAgeMs or for a new domain; their values meanwhile from the last read', async t => {
  const hv = new FakeHypervisor()
  for (let i = 0; i < 4; i++) hv.define(runningStats(`d${i}`, uuidOf(i)))
  let clock = 0
  const c = new LibvirtCollector({ hypervisor: hv, concurrency: 2, keptGroups: ['balloon'], keptMaxAgeMs: 30_000, now: () => clock })
  const groupsOfLast = (): string => JSON.stringify(hv.statsGroups.slice(-2))
  const every = JSON.stringify([undefined, undefined])
  const fresh = JSON.stringify([['state', 'cpu', 'vcpu', 'interface', 'block'], ['state', 'cpu', 'vcpu', 'interface', 'block']])
  const rss = (samples: Sample[]): number | undefined => value(samples, 'libvirt_domain_memory_stats_rss_bytes', { domain: 'd1' })
  const first = await c.collect(signal())
  t.equal(groupsOfLast(), every, 'first scrape: every group')
  const before = rss(first)
  hv.domains.get(uuidOf(1))!.stats.balloon!.rssKiB = 1
  hv.domains.get(uuidOf(1))!.stats.cpu!.timeNs = 99e9
  clock = 29_999
  const second = await c.collect(signal())
  t.equal(groupsOfLast(), fresh, 'within keptMaxAgeMs: balloon is not asked for')
  t.equal(rss(second), before, 'its values come from the last read')
  t.equal(value(second, 'libvirt_domain_info_cpu_time_seconds_total', { domain: 'd1' }), 99, 'the other groups are read at this scrape')
  t.same(new Set(second.map(s => s.name)), new Set(first.map(s => s.name)), 'every family as before')
  clock = 30_000
  t.equal(rss(await c.collect(signal())), 1024, 'once keptMaxAgeMs passed: read again')
  t.equal(groupsOfLast(), every)
  hv.define(runningStats('d4', uuidOf(4)))
  clock = 30_001
  const withNew = await c.collect(signal())
  t.equal(groupsOfLast(), every, 'a new domain: every group, so it has them all at once')
  t.ok(value(withNew, 'libvirt_domain_memory_stats_rss_bytes', { domain: 'd4' }) !== undefined)
  clock = 30_002
  hv.stop(uuidOf(4))
  await c.collect(signal())
  t.equal(groupsOfLast(), fresh, 'a domain that stops is not new')
  t.throws(() => new LibvirtCollector({ hypervisor: hv, keptGroups: ['block'] }), /keptGroups may hold balloon, vcpu, got block/)
  t.throws(() => new LibvirtCollector({ hypervisor: hv, keptMaxAgeMs: -1 }), /keptMaxAgeMs must be/)
})

t.test('by default vcpu is kept: each vCPU\'s state and time read at every scrape without the group, its wait and delay as kept', async t => {
  const hv = new FakeHypervisor()
  for (let i = 0; i < 2; i++) hv.define(runningStats(`d${i}`, uuidOf(i)))
  let clock = 0
  const c = new LibvirtCollector({ hypervisor: hv, keptMaxAgeMs: 30_000, now: () => clock })
  const vcpu0 = (samples: Sample[], name: string): number | undefined => value(samples, name, { domain: 'd1', vcpu: '0' })
  const first = await c.collect(signal())
  const wait = vcpu0(first, 'libvirt_domain_vcpu_wait_seconds_total')
  const v = hv.domains.get(uuidOf(1))!.stats.vcpu!.vcpus[0]
  v.timeNs = 77e9
  v.waitNs = 66e9
  clock = 1000
  const second = await c.collect(signal())
  t.notOk(hv.statsGroups.at(-1)?.includes('vcpu'), 'the vcpu group is not asked for')
  t.ok(hv.vcpuCalls >= 2, 'virDomainGetVcpus per running domain')
  t.equal(vcpu0(second, 'libvirt_domain_vcpu_time_seconds_total'), 77, 'time: read at this scrape')
  t.equal(vcpu0(second, 'libvirt_domain_vcpu_wait_seconds_total'), wait, 'wait: as kept')
  t.same(new Set(second.map(s => s.name)), new Set(first.map(s => s.name)), 'every family as before')
})
