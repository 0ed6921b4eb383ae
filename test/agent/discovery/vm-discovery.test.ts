import t from 'tap'
import { VmDiscovery, type DiscoveredVm } from '../../../agent/discovery/vm-discovery'
import type { FoundVm, VmDirectoryReader } from '../../../agent/discovery/vm-directory'
import type { RunningDomains } from '../../../agent/discovery/running-domains'
import type { DomainRef } from '../../../host/hypervisor'

// Discovery's decisions with fakes behind its two interfaces (the VM folder and libvirt's list of
// running domains): which VMs are followed, when the agent is told, and what a failing look keeps.

const KEY = Buffer.alloc(32, 7).toString('base64')
const descriptor = (id: string, metric = 'kpi:k.v') => JSON.stringify({ id, primarySite: { id: 'site-a', publicKey: KEY }, monitoring: [{ metric, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }] })
const vm = (id: string, extra: Partial<FoundVm> = {}): FoundVm => ({ id, descriptorFile: `/vms/${id}/descriptor.json`, descriptorText: descriptor(id), domain: id, feedSocket: `/vms/${id}/kpi.sock`, hasDomainXml: true, ...extra })

class FakeFolder implements VmDirectoryReader {
  readonly vmDir = '/vms'
  vms: FoundVm[] = []
  error?: Error
  async scan (): Promise<FoundVm[]> {
    if (this.error) throw this.error
    return this.vms.map((v) => ({ ...v }))
  }
}

class FakeLibvirt implements RunningDomains {
  names = new Set<string>()
  error?: Error
  /** Each domain's run id: a restart gives a new one. */
  runs = new Map<string, number>()
  xml = new Map<string, string>()
  xmlCalls = 0
  async running (): Promise<Map<string, DomainRef>> {
    if (this.error) throw this.error
    return new Map([...this.names].map((name) => [name, { name, uuid: `uuid-${name}`, id: this.runs.get(name) ?? 1 }]))
  }

  async liveXml (ref: DomainRef): Promise<string> {
    this.xmlCalls++
    return this.xml.get(ref.name) ?? '<domain/>'
  }
}

function setup (withLibvirt = true) {
  const folder = new FakeFolder()
  const libvirt = new FakeLibvirt()
  const changes: Array<ReadonlyMap<string, DiscoveredVm>> = []
  const log: string[] = []
  const discovery = new VmDiscovery({ directory: folder, domains: withLibvirt ? libvirt : undefined, intervalMs: 60_000, onChange: (vms) => changes.push(vms), log: (line) => log.push(line) })
  return { folder, libvirt, changes, log, discovery }
}

t.test('a VM is followed while its folder is there and its domain runs', async (t) => {
  const { folder, libvirt, changes, log, discovery } = setup()
  folder.vms = [vm('a'), vm('b')]
  libvirt.names = new Set(['a'])
  await discovery.scan()
  t.equal(changes.length, 1)
  t.strictSame([...changes[0].keys()], ['a'], 'b has a folder but its domain does not run (shut off, saved, or still arriving)')
  t.strictSame(changes[0].get('a')!.config, { name: 'a', descriptor: '/vms/a/descriptor.json', domain: 'a', feed: 'unix:/vms/a/kpi.sock' }, 'followed like a vms entry: its KPI channel is its feed')
  t.match(log.join('\n'), /VM a is here \(domain a, feed unix:\/vms\/a\/kpi\.sock\)/)

  await discovery.scan()
  t.equal(changes.length, 1, 'nothing changed: the agent is not told again')

  libvirt.names.add('b')
  await discovery.scan()
  t.strictSame([...changes[1].keys()], ['a', 'b'], 'b started (arrived): added')
  t.equal(changes[1].get('a'), changes[0].get('a'), 'a is the same entry (its descriptor is not applied again)')

  libvirt.names.delete('a')
  await discovery.scan()
  t.strictSame([...changes[2].keys()], ['b'], 'a stopped running (saved for leaving): dropped')
  t.match(log.join('\n'), /VM a left/)

  folder.vms = [vm('b', { feedSocket: '/vms/b/other.sock' })]
  await discovery.scan()
  t.equal(changes[3].get('b')!.config.feed, 'unix:/vms/b/other.sock', 'a changed channel path is a change')
  t.equal(changes[3].get('b')!.descriptor, changes[2].get('b')!.descriptor, 'with the same parsed descriptor')

  folder.vms = []
  await discovery.scan()
  t.equal(changes[4].size, 0, 'folder gone (released after a migration): dropped')
})

t.test('a running VM whose folder has no domain.xml gets its KPI channel from the live domain XML', async (t) => {
  const { folder, libvirt, changes, discovery } = setup()
  libvirt.names = new Set(['a'])
  libvirt.xml.set('a', `<domain><name>a</name><devices><channel type='unix'><source mode='bind' path='/vms/a/live.sock'/><target type='virtio' name='org.fedvm.kpi.0'/></channel></devices></domain>`)
  folder.vms = [vm('a', { feedSocket: undefined, hasDomainXml: false })]
  await discovery.scan()
  t.equal(changes[0].get('a')!.config.feed, 'unix:/vms/a/live.sock', 'the channel libvirt runs the domain with')
  await discovery.scan()
  await discovery.scan()
  t.equal(libvirt.xmlCalls, 1, 'read once per run of the domain, not every interval')
  libvirt.runs.set('a', 2)
  libvirt.xml.set('a', '<domain><name>a</name></domain>')
  await discovery.scan()
  t.equal(libvirt.xmlCalls, 2, 'read again after the domain was restarted')
  t.notOk('feed' in changes[1].get('a')!.config, 'a run without the channel: no feed')
  folder.vms = [vm('a', { feedSocket: undefined })]
  await discovery.scan()
  t.equal(libvirt.xmlCalls, 2, 'a domain.xml without the channel is taken at its word')
})

t.test('the libvirt domain is the one domain.xml names', async (t) => {
  const { folder, libvirt, changes, discovery } = setup()
  folder.vms = [vm('a', { domain: 'guest-a' })]
  libvirt.names = new Set(['a'])
  await discovery.scan()
  t.equal(changes.length, 0, 'a domain named like the folder is not this VM')
  libvirt.names = new Set(['guest-a'])
  await discovery.scan()
  t.equal(changes[0].get('a')!.config.domain, 'guest-a', 'libvirt stats are read for that domain')
})

t.test('without a libvirt connection every VM folder is followed', async (t) => {
  const { folder, changes, discovery } = setup(false)
  folder.vms = [vm('a'), vm('b', { feedSocket: undefined })]
  await discovery.scan()
  t.strictSame([...changes[0].keys()], ['a', 'b'])
  t.notOk('feed' in changes[0].get('b')!.config, 'a VM without the KPI channel has no feed (libvirt stats only)')
})

t.test('descriptors: a changed one is applied, an invalid one refused (logged once), the valid one before kept', async (t) => {
  const { folder, libvirt, changes, log, discovery } = setup()
  libvirt.names = new Set(['a', 'b'])
  folder.vms = [vm('a'), vm('b', { descriptorText: '{ not json' })]
  await discovery.scan()
  t.strictSame([...changes[0].keys()], ['a'], 'b\'s descriptor is not JSON: b is not followed')
  t.match(log.join('\n'), /VM b: descriptor refused, not following it: .*\/vms\/b\/descriptor\.json/)
  await discovery.scan()
  t.equal(log.filter((l) => l.includes('VM b: descriptor refused')).length, 1, 'logged once, not every interval')

  folder.vms = [vm('a', { descriptorText: descriptor('a', 'kpi:k.w') }), vm('b')]
  await discovery.scan()
  t.equal(changes[1].get('a')!.descriptor.monitoring[0].metric, 'kpi:k.w', 'a changed descriptor (the Control interface) is a change')
  t.ok(changes[1].has('b'), 'b\'s descriptor was mended: followed')

  const before = changes[1].get('a')!.descriptor
  folder.vms = [vm('a', { descriptorText: JSON.stringify({ id: 'a', monitoring: [{ metric: 'kpi:k.v' }] }) }), vm('b')]
  await discovery.scan()
  t.equal(changes.length, 2, 'an invalid new descriptor changes nothing')
  t.equal(discovery.current.get('a')!.descriptor, before, 'the VM keeps the descriptor applied before')
  t.match(log.join('\n'), /VM a: descriptor refused, keeping the one applied before: .*primarySite/)
})

t.test('a look that fails keeps every VM followed (libvirtd restarting, the folder unreadable)', async (t) => {
  const { folder, libvirt, changes, log, discovery } = setup()
  folder.vms = [vm('a')]
  libvirt.names = new Set(['a'])
  await discovery.scan()
  libvirt.error = new Error('connection refused')
  await discovery.scan()
  await discovery.scan()
  folder.error = new Error('EACCES')
  await discovery.scan()
  t.equal(changes.length, 1, 'nothing dropped')
  t.equal(log.filter((l) => l.includes('connection refused')).length, 1, 'the same failure is logged once')
  t.match(log.join('\n'), /keeping the VMs followed now: EACCES/)
  folder.error = libvirt.error = undefined
  libvirt.names = new Set()
  await discovery.scan()
  t.equal(changes[1].size, 0, 'once it can look again, what it sees counts')
})

t.test('start() looks at once and then every interval; stop() waits for a look in progress', async (t) => {
  const folder = new FakeFolder()
  folder.vms = [vm('a')]
  let looks = 0
  const counting: VmDirectoryReader = { vmDir: '/vms', scan: async () => { looks++; return folder.scan() } }
  const changes: unknown[] = []
  const discovery = new VmDiscovery({ directory: counting, intervalMs: 30, onChange: (vms) => changes.push(vms), log: () => {} })
  const startedAt = Date.now()
  discovery.start()
  t.equal(looks, 1, 'the first look at once')
  while (looks < 3 && Date.now() - startedAt < 10_000) await new Promise((resolve) => setTimeout(resolve, 10))
  await discovery.stop()
  const after = looks
  t.ok(after >= 3, `looked ${after} times in ${Date.now() - startedAt} ms at a 30 ms interval`)
  t.equal(changes.length, 1)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(looks, after, 'no look after stop()')
})
