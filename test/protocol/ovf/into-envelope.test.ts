import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DescriptorFormatError } from '../../../protocol/ovf/errors'
import { intoEnvelope } from '../../../protocol/ovf/into-envelope'
import { ovfToDescriptor } from '../../../protocol/ovf/read-ovf'
import type { DescriptorFields } from '../../../protocol/ovf/write-ovf'

// The workflow a package needs: a tool exports the VM (VBoxManage export, ovftool), fedvm adds its section.

const FIXTURE = readFileSync(join(__dirname, 'fixtures', 'web-1.ovf'), 'utf8')
/** The package as VirtualBox exported it, before fedvm's section was added. */
const EXPORTED = FIXTURE.replace(/ *<fedvm:MonitoringSection[^]*<\/fedvm:MonitoringSection>\n/, '')
const DESCRIPTOR = ovfToDescriptor(FIXTURE).descriptor as unknown as DescriptorFields

t.test('the exported package with fedvm\'s section: every other byte as it was', async (t) => {
  t.notMatch(EXPORTED, /MonitoringSection/, 'the exported package has no section')
  const result = intoEnvelope(EXPORTED, DESCRIPTOR)
  t.strictSame(ovfToDescriptor(result).descriptor, DESCRIPTOR)
  const inserted = /\n( *<fedvm:MonitoringSection[^]*<\/fedvm:MonitoringSection>\n)/.exec(result)?.[1] ?? ''
  t.equal(result.replace(inserted, ''), EXPORTED, 'only the section was added')
  t.match(inserted, /^ {4}<fedvm:MonitoringSection ovf:required="false" xmlns:ovf="http:\/\/schemas\.dmtf\.org\/ovf\/envelope\/2" xmlns:fedvm="urn:fedvm:ovf:monitoring:1">\n {6}<ovf:Info>/, 'indented as its siblings, its prefixes declared')
  t.match(result, /<\/fedvm:MonitoringSection>\n {2}<\/VirtualSystem>/)
})

t.test('a section already there is replaced, not repeated', async (t) => {
  const changed: DescriptorFields = { ...DESCRIPTOR, monitoring: [{ metric: 'cpu.time', monitoringIntervalMs: 1, deliveryIntervalMs: 2, format: 'raw' }] }
  const once = intoEnvelope(FIXTURE, changed)
  t.strictSame(ovfToDescriptor(once).descriptor.monitoring, changed.monitoring)
  t.equal(once.match(/<fedvm:MonitoringSection/g)?.length, 1)
  t.equal(intoEnvelope(once, changed), once, 'doing it again changes nothing')
  t.equal(intoEnvelope(once, DESCRIPTOR), intoEnvelope(EXPORTED, DESCRIPTOR), 'replacing gives what adding to the exported package gives')
})

t.test('an OVF 1.x package gets a section in OVF 1\'s namespace, so ovf:required means what it says there', async (t) => {
  const v1 = EXPORTED.replaceAll('http://schemas.dmtf.org/ovf/envelope/2', 'http://schemas.dmtf.org/ovf/envelope/1')
  const result = intoEnvelope(v1, DESCRIPTOR)
  t.match(result, /<fedvm:MonitoringSection ovf:required="false" xmlns:ovf="http:\/\/schemas\.dmtf\.org\/ovf\/envelope\/1"/)
  t.strictSame(ovfToDescriptor(result).descriptor, DESCRIPTOR)
})

t.test('a descriptor that disagrees with the package is refused, naming where', async (t) => {
  const cases: Array<[DescriptorFields, string, RegExp]> = [
    [{ ...DESCRIPTOR, id: 'web-2' }, 'Envelope/VirtualSystem/@ovf:id', /the package's VM is "web-1", the descriptor's id "web-2"/],
    [{ ...DESCRIPTOR, resources: { memoryMiB: 4096 } }, 'Envelope/VirtualSystem/VirtualHardwareSection', /memoryMiB differ\): the package's hardware is not rewritten/],
  ]
  for (const [descriptor, element, problem] of cases) {
    const err = t.throws(() => intoEnvelope(EXPORTED, descriptor)) as DescriptorFormatError
    t.ok(err instanceof DescriptorFormatError)
    t.equal(err.element, element)
    t.match(err.problem, problem)
  }
  t.strictSame(ovfToDescriptor(intoEnvelope(EXPORTED, { ...DESCRIPTOR, resources: { vcpus: 2 } })).descriptor.resources, { memoryMiB: 2048, vcpus: 2 }, 'resources that agree, in part, are fine')
})

t.test('an ovftool-shaped OVF 1.0 appliance with deployment options: the section goes in, the default configuration\'s hardware reads', async (t) => {
  const exported = readFileSync(join(__dirname, 'fixtures', 'db-1-ovftool.ovf'), 'utf8')
  const descriptor: DescriptorFields = {
    id: 'db-1',
    primarySite: DESCRIPTOR.primarySite,
    resources: { memoryMiB: 16384, vcpus: 4 },
    monitoring: [{ metric: 'kpi:pg.connections', monitoringIntervalMs: 1000, deliveryIntervalMs: 5000, format: 'processed', function: 'max', when: { op: '>=', value: 90 } }],
  }
  const result = intoEnvelope(exported, descriptor)
  t.strictSame(ovfToDescriptor(result).descriptor, descriptor, 'medium, the default configuration')
  t.strictSame(ovfToDescriptor(result, { configuration: 'small' }).descriptor.resources, { memoryMiB: 4096, vcpus: 2 })
  t.match(result, /<!--\n {2}Written by hand in the shape VMware's `ovftool` writes/, 'the comment is kept')
  t.match(result, /<\/ProductSection>\n {4}<fedvm:MonitoringSection ovf:required="false" xmlns:ovf="http:\/\/schemas\.dmtf\.org\/ovf\/envelope\/1"/)
  const refused = t.throws(() => intoEnvelope(exported, { ...descriptor, resources: { memoryMiB: 4096, vcpus: 2 } })) as DescriptorFormatError
  t.match(refused.problem, /holds \{"memoryMiB":16384,"vcpus":4\}/, 'compared with the default configuration')
})
