import { chosenConfiguration } from './deployment-options'
import { DescriptorFormatError } from './errors'
import { readMonitoringSection, SECTION } from './monitoring-section'
import { FEDVM, OVF_2, OVF_NAMESPACES } from './namespaces'
import { Origins } from './origins'
import { readResources } from './virtual-hardware'
import { attributeNamed, childrenNamed, parseXml, type XmlElement } from './xml-tree'

export interface EnvelopeDescriptor {
  /** The descriptor as JSON (DESIGN Contract 3), not yet checked against the descriptor schema. */
  readonly descriptor: Record<string, unknown>
  /** The element or attribute a descriptor field came from, to name in a message about that field. */
  elementOf (field: readonly PropertyKey[]): string
}

/**
 * Reads a VM descriptor from an OVF envelope (DMTF DSP0243 2.x; 1.x reads the same): the id from the
 * VirtualSystem's ovf:id, `resources` from its VirtualHardwareSection, the primary site and monitoring
 * specifiers from fedvm's extension section. Every other section (References, DiskSection,
 * NetworkSection, OperatingSystemSection, a tool's own) is skipped. With a DeploymentOptionSection, the
 * hardware is that of `options.configuration`, else the default one. Throws DescriptorFormatError naming the element.
 */
export function ovfToDescriptor (text: string, options: { configuration?: string } = {}): EnvelopeDescriptor {
  const envelope = parseEnvelope(text)
  const origins = new Origins(envelope.path)
  const system = virtualSystem(envelope)
  const id = attributeNamed(system, OVF_NAMESPACES, 'id')
  if (id === undefined || id.value.trim() === '') throw new DescriptorFormatError(`${system.path}/@ovf:id`, 'missing: the VM\'s id')
  origins.record(['id'], id.path)

  const descriptor: Record<string, unknown> = { id: id.value }
  const monitoring = readMonitoringSection(monitoringSection(envelope, system), origins)
  descriptor.primarySite = monitoring.primarySite
  const { memoryMiB, vcpus } = readResources(hardwareSection(system), origins, chosenConfiguration(envelope, options.configuration))
  if (memoryMiB !== undefined || vcpus !== undefined) descriptor.resources = { ...(memoryMiB === undefined ? {} : { memoryMiB }), ...(vcpus === undefined ? {} : { vcpus }) }
  descriptor.monitoring = monitoring.monitoring
  return { descriptor, elementOf: (field) => origins.elementOf(field) }
}

/** The text's root element, checked to be an OVF Envelope. */
export function parseEnvelope (text: string): XmlElement {
  const envelope = parseXml(text, 'Envelope')
  if (envelope.local !== 'Envelope' || !OVF_NAMESPACES.includes(envelope.ns)) {
    throw new DescriptorFormatError(envelope.path, `the root element must be an OVF Envelope in the namespace ${OVF_2} (found {${envelope.ns}}${envelope.local})`)
  }
  return envelope
}

/** A fedvm descriptor is one VM: a VirtualSystemCollection (a multi-VM appliance) is refused. */
export function virtualSystem (envelope: XmlElement): XmlElement {
  const collection = childrenNamed(envelope, OVF_NAMESPACES, 'VirtualSystemCollection')[0]
  if (collection !== undefined) throw new DescriptorFormatError(collection.path, 'a fedvm descriptor describes one VM: give an envelope with one VirtualSystem')
  const systems = childrenNamed(envelope, OVF_NAMESPACES, 'VirtualSystem')
  if (systems.length === 0) throw new DescriptorFormatError(`${envelope.path}/VirtualSystem`, 'missing')
  if (systems.length > 1) throw new DescriptorFormatError(systems[1].path, 'a fedvm descriptor describes one VM: one VirtualSystem only')
  return systems[0]
}

function hardwareSection (system: XmlElement): XmlElement {
  const sections = childrenNamed(system, OVF_NAMESPACES, 'VirtualHardwareSection')
  if (sections.length === 0) throw new DescriptorFormatError(`${system.path}/VirtualHardwareSection`, 'missing (OVF requires one in a VirtualSystem)')
  if (sections.length > 1) throw new DescriptorFormatError(sections[1].path, 'fedvm reads one VirtualHardwareSection (one per hypervisor type is not supported)')
  return sections[0]
}

function monitoringSection (envelope: XmlElement, system: XmlElement): XmlElement {
  const sections = childrenNamed(system, FEDVM, SECTION)
  if (sections.length > 1) throw new DescriptorFormatError(sections[1].path, 'one monitoring section only')
  if (sections.length === 1) return sections[0]
  const misplaced = childrenNamed(envelope, FEDVM, SECTION)[0]
  if (misplaced !== undefined) throw new DescriptorFormatError(misplaced.path, 'belongs inside the VirtualSystem it describes')
  throw new DescriptorFormatError(`${system.path}/fedvm:${SECTION}`, `missing: fedvm's section (namespace ${FEDVM}) holds the primary site and the monitoring specifiers`)
}
