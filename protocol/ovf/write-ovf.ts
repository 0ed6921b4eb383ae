import { DescriptorFormatError } from './errors'
import { monitoringSection, type PrimarySite, type SpecifierFields } from './monitoring-section'
import { FEDVM, OVF_2, RASD } from './namespaces'
import { resourceItems, type Resources } from './virtual-hardware'
import { buildXml, element, textElement } from './xml-nodes'

/** What the envelope carries of a descriptor (a VmDescriptor from agent/descriptor is one). */
export interface DescriptorFields {
  id: string
  primarySite: PrimarySite
  resources?: Resources
  monitoring: readonly SpecifierFields[]
}

/**
 * An OVF 2.0 envelope for the descriptor: one VirtualSystem whose VirtualHardwareSection holds the
 * processor and memory items and whose fedvm section holds the rest. It names no files, disks or
 * networks: those belong to the package a tool exports, and fedvm does not know them.
 */
export function descriptorToOvf (descriptor: DescriptorFields): string {
  const resources = checkedResources(descriptor.resources)
  const envelope = element('Envelope', {
    xmlns: OVF_2,
    'xmlns:ovf': OVF_2,
    'xmlns:rasd': RASD,
    'xmlns:fedvm': FEDVM,
  }, [
    element('References'),
    element('VirtualSystem', { 'ovf:id': descriptor.id }, [
      textElement('Info', `VM ${descriptor.id}`),
      element('VirtualHardwareSection', {}, [
        textElement('Info', 'Virtual hardware requirements'),
        ...resourceItems(resources),
      ]),
      monitoringSection(descriptor.primarySite, descriptor.monitoring),
    ]),
  ])
  return `<?xml version="1.0" encoding="UTF-8"?>\n${buildXml([envelope])}\n`
}

/** The items read back only as positive integers: refuse anything else here rather than write an envelope fedvm refuses. */
export function checkedResources (resources: Resources | undefined): Resources {
  if (resources === undefined) return {}
  if (typeof resources !== 'object' || resources === null) throw new DescriptorFormatError('resources', 'must be an object { memoryMiB, vcpus }')
  for (const key of ['memoryMiB', 'vcpus'] as const) {
    const value = resources[key]
    if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) throw new DescriptorFormatError(`resources.${key}`, `must be a positive integer (found ${JSON.stringify(value)})`)
  }
  return resources
}
