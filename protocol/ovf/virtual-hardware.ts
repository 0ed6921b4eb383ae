import { bytesPerUnit, MIB, MIB_UNITS } from './allocation-units'
import { appliesTo } from './deployment-options'
import { DescriptorFormatError } from './errors'
import { OVF_NAMESPACES, RASD } from './namespaces'
import type { Origins } from './origins'
import { childrenNamed, type XmlElement } from './xml-tree'
import { element, textElement, type XmlNode } from './xml-nodes'

/** The descriptor's `resources` (DESIGN Contract 3): what the VM needs of a host. */
export interface Resources {
  memoryMiB?: number
  vcpus?: number
}

/** CIM_ResourceAllocationSettingData.ResourceType values (DSP0243 Table 5). */
const PROCESSOR = '3'
const MEMORY = '4'

/**
 * `resources` from a VirtualHardwareSection's rasd Items: the processor item's VirtualQuantity is the
 * vCPU count, the memory item's VirtualQuantity times its AllocationUnits the memory. Other items
 * (controllers, disks, NICs) and StorageItem / EthernetPortItem are not fedvm's business and are skipped,
 * as are the items of configurations other than `configuration` (deployment-options.ts).
 */
export function readResources (section: XmlElement, origins: Origins, configuration: string | undefined): Resources {
  const resources: Resources = {}
  for (const item of childrenNamed(section, OVF_NAMESPACES, 'Item')) {
    if (!appliesTo(item, configuration)) continue
    const type = rasd(item, 'ResourceType')?.text
    if (type !== PROCESSOR && type !== MEMORY) continue
    const key = type === MEMORY ? 'memoryMiB' : 'vcpus'
    if (resources[key] !== undefined) throw new DescriptorFormatError(item.path, `a second ${type === MEMORY ? 'memory' : 'processor'} item (rasd:ResourceType ${type}): fedvm reads one`)
    const quantity = positiveInteger(item, 'VirtualQuantity')
    resources[key] = type === MEMORY ? memoryMiB(item, quantity) : safeNumber(item, quantity)
    origins.record(['resources', key], `${item.path}/rasd:VirtualQuantity`)
  }
  return resources
}

/** Items for `resources`, as ovftool writes them: InstanceID and ElementName are required by CIM. */
export function resourceItems (resources: Resources): XmlNode[] {
  const items: XmlNode[] = []
  if (resources.vcpus !== undefined) {
    items.push(element('Item', {}, [
      textElement('rasd:ElementName', `${resources.vcpus} virtual CPU(s)`),
      textElement('rasd:InstanceID', String(items.length + 1)),
      textElement('rasd:ResourceType', PROCESSOR),
      textElement('rasd:VirtualQuantity', String(resources.vcpus)),
    ]))
  }
  if (resources.memoryMiB !== undefined) {
    items.push(element('Item', {}, [
      textElement('rasd:AllocationUnits', MIB_UNITS),
      textElement('rasd:ElementName', `${resources.memoryMiB} MiB of memory`),
      textElement('rasd:InstanceID', String(items.length + 1)),
      textElement('rasd:ResourceType', MEMORY),
      textElement('rasd:VirtualQuantity', String(resources.memoryMiB)),
    ]))
  }
  return items
}

function rasd (item: XmlElement, local: string): XmlElement | undefined {
  return childrenNamed(item, RASD, local)[0]
}

function positiveInteger (item: XmlElement, local: string): bigint {
  const found = rasd(item, local)
  if (found === undefined) throw new DescriptorFormatError(`${item.path}/rasd:${local}`, 'missing')
  if (!/^\+?[0-9]+$/.test(found.text) || BigInt(found.text) === 0n) throw new DescriptorFormatError(found.path, `must be a positive integer (found "${found.text}")`)
  return BigInt(found.text)
}

function memoryMiB (item: XmlElement, quantity: bigint): number {
  const units = rasd(item, 'AllocationUnits')
  if (units === undefined) throw new DescriptorFormatError(`${item.path}/rasd:AllocationUnits`, `missing: a memory item needs its unit, such as ${MIB_UNITS}`)
  const perUnit = bytesPerUnit(units.text)
  if (perUnit === undefined || perUnit === 0n) throw new DescriptorFormatError(units.path, `unknown unit "${units.text}" (expected byte * 2^N, such as ${MIB_UNITS}, or MegaBytes)`)
  const bytes = quantity * perUnit
  if (bytes % MIB !== 0n) throw new DescriptorFormatError(item.path, `${quantity} × ${units.text} is not a whole number of MiB`)
  return safeNumber(item, bytes / MIB)
}

function safeNumber (item: XmlElement, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new DescriptorFormatError(`${item.path}/rasd:VirtualQuantity`, 'is too large')
  return Number(value)
}
