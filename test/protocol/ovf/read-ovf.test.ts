import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DescriptorFormatError } from '../../../protocol/ovf/errors'
import { ovfToDescriptor } from '../../../protocol/ovf/read-ovf'

// An OVF envelope is the descriptor's second form; "a malformed envelope is refused naming the element".

const FIXTURE = readFileSync(join(__dirname, 'fixtures', 'web-1.ovf'), 'utf8')
const KEY = '7x5f6MP4s4vkAPsrHEHuSHrzna/am6Uegtq6ge0wCHI='

t.test('the VirtualBox-shaped package: id, resources, primary site and specifiers; its other sections are skipped', async (t) => {
  const { descriptor, elementOf } = ovfToDescriptor(FIXTURE)
  t.strictSame(descriptor, {
    id: 'web-1',
    primarySite: { id: 'site-a', publicKey: KEY },
    resources: { memoryMiB: 2048, vcpus: 2 },
    monitoring: [
      { metric: 'kpi:users.current_users', monitoringIntervalMs: 1000, deliveryIntervalMs: 10000, format: 'processed', function: 'median', encrypt: false, when: { op: '>', value: 1000 } },
      { metric: 'cpu.time', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
      { metric: 'kpi:revenue', monitoringIntervalMs: 5000, deliveryIntervalMs: 60000, format: 'raw', encrypt: true },
    ],
  })
  t.equal(elementOf(['resources', 'memoryMiB']), 'Envelope/VirtualSystem/VirtualHardwareSection/Item[2]/rasd:VirtualQuantity')
  t.equal(elementOf(['monitoring', 0, 'when', 'op']), 'Envelope/VirtualSystem/fedvm:MonitoringSection/fedvm:Specifier[1]/fedvm:When/@op')
  t.equal(elementOf(['monitoring', 1, 'function']), 'Envelope/VirtualSystem/fedvm:MonitoringSection/fedvm:Specifier[2]/@function', 'an absent field names its attribute')
  t.equal(elementOf(['monitoring', 2]), 'Envelope/VirtualSystem/fedvm:MonitoringSection/fedvm:Specifier[3]')
  t.equal(elementOf(['primarySite', 'publicKey']), 'Envelope/VirtualSystem/fedvm:MonitoringSection/fedvm:PrimarySite/@publicKey')
  t.equal(elementOf(['nothing', 'recorded']), 'Envelope')
})

/** A minimal envelope in ovftool's conventions: OVF elements prefixed `ovf:`, memory in `byte * 2^20`. */
function envelope ({ items = ITEMS, section = SECTION_XML, system = 'ovf:id="db-1"', around = '' }: { items?: string, section?: string, system?: string, around?: string } = {}): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:f="urn:fedvm:ovf:monitoring:1">
  <ovf:References/>
  ${around}
  <ovf:VirtualSystem ${system}>
    <ovf:Info>A virtual machine</ovf:Info>
    <ovf:VirtualHardwareSection>
      <ovf:Info>Virtual hardware requirements</ovf:Info>
      ${items}
      <vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled" vmw:value="false"/>
    </ovf:VirtualHardwareSection>
    ${section}
  </ovf:VirtualSystem>
</ovf:Envelope>`
}

function item (type: number, quantity: string, units?: string): string {
  return `<ovf:Item>${units === undefined ? '' : `<rasd:AllocationUnits>${units}</rasd:AllocationUnits>`}<rasd:InstanceID>${type}</rasd:InstanceID><rasd:ResourceType>${type}</rasd:ResourceType><rasd:VirtualQuantity>${quantity}</rasd:VirtualQuantity></ovf:Item>`
}

const ITEMS = item(3, '4') + item(4, '8192', 'byte * 2^20')
const SPECIFIER = 'metric="net.rx_bytes" monitoringIntervalMs="500" deliveryIntervalMs="0" format="processed" function="max"'
const SECTION_XML = `<f:MonitoringSection ovf:required="false"><ovf:Info>fedvm</ovf:Info><f:PrimarySite id="site-b" publicKey="${KEY}"/><f:Specifier ${SPECIFIER}/></f:MonitoringSection>`
const SECTION_PATH = 'Envelope/VirtualSystem/fedvm:MonitoringSection'
const HW = 'Envelope/VirtualSystem/VirtualHardwareSection'

t.test('ovftool\'s conventions: prefixed OVF elements, any prefix for fedvm\'s namespace, vmw:Config skipped', async (t) => {
  t.strictSame(ovfToDescriptor(envelope()).descriptor, {
    id: 'db-1',
    primarySite: { id: 'site-b', publicKey: KEY },
    resources: { memoryMiB: 8192, vcpus: 4 },
    monitoring: [{ metric: 'net.rx_bytes', monitoringIntervalMs: 500, deliveryIntervalMs: 0, format: 'processed', function: 'max' }],
  })
})

t.test('OVF 1.x envelopes (VirtualBox\'s default export) read the same', async (t) => {
  const v1 = envelope().replace('xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"', 'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"')
  t.equal(ovfToDescriptor(v1).descriptor.id, 'db-1')
})

t.test('memory units: programmatic units and VirtualBox\'s names, converted to MiB', async (t) => {
  const cases: Array<[quantity: string, units: string, mib: number]> = [
    ['2048', 'MegaBytes', 2048],
    ['4', 'byte * 2^30', 4096],
    ['4', 'GigaBytes', 4096],
    ['1048576', 'byte * 2^10', 1024],
    ['1048576', 'KiloBytes', 1024],
    ['536870912', 'byte', 512],
    ['512', 'byte*2^20', 512],
    ['2097152', 'byte * 1024', 2048],
  ]
  for (const [quantity, units, mib] of cases) {
    const { descriptor } = ovfToDescriptor(envelope({ items: item(4, quantity, units) }))
    t.strictSame(descriptor.resources, { memoryMiB: mib }, `${quantity} × ${units}`)
  }
})

t.test('no processor or memory item: no resources', async (t) => {
  t.notOk('resources' in ovfToDescriptor(envelope({ items: '' })).descriptor)
})

t.test('text is decoded: entities and character references in attributes', async (t) => {
  const section = SECTION_XML.replace(SPECIFIER, 'metric="kpi:&quot;a&lt;b&quot;.n" monitoringIntervalMs="0" deliveryIntervalMs="0" format="raw"><f:When op="&#60;=" value="-2.5e3"/></f:Specifier><f:Specifier metric="x"')
  const monitoring = ovfToDescriptor(envelope({ section })).descriptor.monitoring as Array<Record<string, unknown>>
  t.equal(monitoring[0].metric, 'kpi:"a<b".n')
  t.strictSame(monitoring[0].when, { op: '<=', value: -2500 })
})

function refusal (xml: string): DescriptorFormatError {
  try {
    ovfToDescriptor(xml)
  } catch (err) {
    if (err instanceof DescriptorFormatError) return err
    throw err
  }
  throw new Error('accepted')
}

/** Each malformed envelope and the element its message must name (the message is `ELEMENT: problem`). */
const MALFORMED: Array<[what: string, xml: string, element: string, problem: RegExp]> = [
  ['not XML', 'web-1 please', 'Envelope', /not well-formed XML/],
  ['unclosed element', envelope().replace('</ovf:VirtualSystem>', ''), 'Envelope', /not well-formed XML: .*closing tag/],
  ['two roots', `${envelope()}<x/>`, 'Envelope', /2 root elements/],
  ['a JSON-like root', '<descriptor/>', 'descriptor', /root element must be an OVF Envelope/],
  ['an Envelope outside OVF\'s namespace', '<Envelope xmlns="urn:other"/>', '{urn:other}Envelope', /root element must be an OVF Envelope/],
  ['an undeclared prefix', envelope({ items: '<ovf:Item><cim:ResourceType>3</cim:ResourceType></ovf:Item>' }), `${HW}/Item/cim:ResourceType`, /prefix "cim" .* not declared/],
  ['no VirtualSystem', envelope().replace(/<ovf:VirtualSystem[^]*<\/ovf:VirtualSystem>/, ''), 'Envelope/VirtualSystem', /missing/],
  ['two VirtualSystems', envelope().replace(/(<ovf:VirtualSystem[^]*<\/ovf:VirtualSystem>)/, '$1$1'), 'Envelope/VirtualSystem[2]', /one VirtualSystem only/],
  ['a VirtualSystemCollection', envelope().replace(/(<ovf:VirtualSystem[^]*<\/ovf:VirtualSystem>)/, '<ovf:VirtualSystemCollection ovf:id="app">$1</ovf:VirtualSystemCollection>'), 'Envelope/VirtualSystemCollection', /describes one VM/],
  ['no ovf:id', envelope({ system: '' }), 'Envelope/VirtualSystem/@ovf:id', /missing/],
  ['an empty ovf:id', envelope({ system: 'ovf:id=" "' }), 'Envelope/VirtualSystem/@ovf:id', /missing/],
  ['no VirtualHardwareSection', envelope().replace(/<ovf:VirtualHardwareSection>[^]*<\/ovf:VirtualHardwareSection>/, ''), `${HW}`, /missing/],
  ['a quantity that is not a number', envelope({ items: item(3, 'two') + item(4, '1024', 'byte * 2^20') }), `${HW}/Item[1]/rasd:VirtualQuantity`, /must be a positive integer \(found "two"\)/],
  ['a zero memory quantity', envelope({ items: item(3, '1') + item(4, '0', 'byte * 2^20') }), `${HW}/Item[2]/rasd:VirtualQuantity`, /must be a positive integer/],
  ['a negative vCPU count', envelope({ items: item(3, '-1') }), `${HW}/Item/rasd:VirtualQuantity`, /must be a positive integer/],
  ['a fractional quantity', envelope({ items: item(3, '1') + item(4, '1.5', 'GigaBytes') }), `${HW}/Item[2]/rasd:VirtualQuantity`, /must be a positive integer/],
  ['no quantity', envelope({ items: '<ovf:Item><rasd:ResourceType>3</rasd:ResourceType></ovf:Item>' }), `${HW}/Item/rasd:VirtualQuantity`, /missing/],
  ['memory without units', envelope({ items: item(4, '1024') }), `${HW}/Item/rasd:AllocationUnits`, /missing/],
  ['memory in an unknown unit', envelope({ items: item(4, '1024', 'furlongs') }), `${HW}/Item/rasd:AllocationUnits`, /unknown unit "furlongs"/],
  ['memory that is not whole MiB', envelope({ items: item(4, '1000', 'byte * 2^10') }), `${HW}/Item`, /not a whole number of MiB/],
  ['two memory items', envelope({ items: item(4, '1', 'GigaBytes') + item(4, '2', 'GigaBytes') }), `${HW}/Item[2]`, /a second memory item/],
  ['two VirtualHardwareSections', envelope().replace(/(<ovf:VirtualHardwareSection>[^]*<\/ovf:VirtualHardwareSection>)/, '$1$1'), `${HW}[2]`, /one VirtualHardwareSection/],
  ['no fedvm section', envelope({ section: '' }), SECTION_PATH, /missing: fedvm's section \(namespace urn:fedvm:ovf:monitoring:1\)/],
  ['the fedvm section outside the VirtualSystem', envelope({ section: '', around: SECTION_XML }), 'Envelope/fedvm:MonitoringSection', /inside the VirtualSystem/],
  ['the section in another namespace', envelope({ section: SECTION_XML.replace(/<(\/?)f:/g, '<$1vmw:') }), SECTION_PATH, /missing/],
  ['no primary site', envelope({ section: SECTION_XML.replace(/<f:PrimarySite[^>]*\/>/, '') }), `${SECTION_PATH}/fedvm:PrimarySite`, /missing/],
  ['two primary sites', envelope({ section: SECTION_XML.replace(/(<f:PrimarySite[^>]*\/>)/, '$1$1') }), `${SECTION_PATH}/fedvm:PrimarySite[2]`, /one primary site/],
  ['a misspelt element', envelope({ section: SECTION_XML.replace('<f:Specifier ', '<f:Specifer ') }), `${SECTION_PATH}/fedvm:Specifer`, /unknown element/],
  ['an interval that is not whole milliseconds', envelope({ section: SECTION_XML.replace('"500"', '"0.5"') }), `${SECTION_PATH}/fedvm:Specifier/@monitoringIntervalMs`, /whole number of milliseconds/],
  ['an interval with a unit', envelope({ section: SECTION_XML.replace('deliveryIntervalMs="0"', 'deliveryIntervalMs="10s"') }), `${SECTION_PATH}/fedvm:Specifier/@deliveryIntervalMs`, /whole number of milliseconds ≥ 0 \(found "10s"\)/],
  ['encrypt that is not a boolean', envelope({ section: SECTION_XML.replace('format=', 'encrypt="yes" format=') }), `${SECTION_PATH}/fedvm:Specifier/@encrypt`, /true or false/],
  ['a predicate value that is not a number', envelope({ section: SECTION_XML.replace(`${SPECIFIER}/>`, `${SPECIFIER}><f:When op="&gt;" value="many"/></f:Specifier>`) }), `${SECTION_PATH}/fedvm:Specifier/fedvm:When/@value`, /finite decimal number/],
  ['a predicate value INF', envelope({ section: SECTION_XML.replace(`${SPECIFIER}/>`, `${SPECIFIER}><f:When op="&gt;" value="INF"/></f:Specifier>`) }), `${SECTION_PATH}/fedvm:Specifier/fedvm:When/@value`, /finite decimal number/],
  ['two predicates', envelope({ section: SECTION_XML.replace(`${SPECIFIER}/>`, `${SPECIFIER}><f:When op="&gt;" value="1"/><f:When op="&lt;" value="9"/></f:Specifier>`) }), `${SECTION_PATH}/fedvm:Specifier/fedvm:When[2]`, /one predicate/],
]

for (const [what, xml, element, problem] of MALFORMED) {
  t.test(`refused, naming the element: ${what}`, async (t) => {
    const err = refusal(xml)
    t.equal(err.element, element)
    t.match(err.problem, problem)
    t.equal(err.message, `${err.element}: ${err.problem}`)
    t.equal(err.code, 'DESCRIPTOR_INVALID')
  })
}

t.test('deployment options (ovftool\'s small/large appliances): the default configuration\'s items, or the one asked for', async (t) => {
  const options = `<ovf:DeploymentOptionSection><ovf:Info>Sizes</ovf:Info>
    <ovf:Configuration ovf:id="small"><ovf:Label>Small</ovf:Label><ovf:Description>1 vCPU</ovf:Description></ovf:Configuration>
    <ovf:Configuration ovf:id="large" ovf:default="true"><ovf:Label>Large</ovf:Label><ovf:Description>4 vCPUs</ovf:Description></ovf:Configuration>
  </ovf:DeploymentOptionSection>`
  const configured = (ids: string, type: number, quantity: string, units?: string): string => item(type, quantity, units).replace('<ovf:Item>', `<ovf:Item ovf:configuration="${ids}">`)
  const items = configured('small', 3, '1') + configured('large', 3, '4') + configured('small  large', 4, '2', 'GigaBytes')
  const xml = envelope({ around: options, items })
  t.strictSame(ovfToDescriptor(xml).descriptor.resources, { memoryMiB: 2048, vcpus: 4 }, 'the default: large')
  t.strictSame(ovfToDescriptor(xml, { configuration: 'small' }).descriptor.resources, { memoryMiB: 2048, vcpus: 1 }, 'asked for: small')
  t.strictSame(ovfToDescriptor(xml.replace(' ovf:default="true"', '')).descriptor.resources, { memoryMiB: 2048, vcpus: 1 }, 'no default: the first')
  const unknown = t.throws(() => ovfToDescriptor(xml, { configuration: 'huge' })) as DescriptorFormatError
  t.equal(unknown.message, 'Envelope/DeploymentOptionSection: no Configuration "huge" (there are small, large)')
  const orphan = refusal(envelope({ items: configured('small', 3, '1') }))
  t.equal(orphan.element, `${HW}/Item/@ovf:configuration`)
  t.match(orphan.problem, /no DeploymentOptionSection/)
})

t.test('siblings are numbered by resolved name, whatever prefix each one uses', async (t) => {
  const mixed = envelope({ items: `<ovf:Item><rasd:ResourceType>10</rasd:ResourceType></ovf:Item><ovf:StorageItem/><Item xmlns="http://schemas.dmtf.org/ovf/envelope/2"><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>0</rasd:VirtualQuantity></Item>` })
  const err = refusal(mixed)
  t.equal(err.element, `${HW}/Item[2]/rasd:VirtualQuantity`)
})
