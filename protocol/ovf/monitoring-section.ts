import { DescriptorFormatError } from './errors'
import { FEDVM } from './namespaces'
import type { Origins } from './origins'
import { attributeNamed, childrenNamed, type XmlElement } from './xml-tree'
import { element, textElement, type XmlNode } from './xml-nodes'

/**
 * fedvm's extension section (README "OVF descriptors"): the primary site and the monitoring specifiers
 * of Elmroth and Larsson's proposal, one `fedvm:Specifier` per specifier with its fields as attributes.
 * `ovf:required="false"` lets an OVF tool that does not know the section deploy the VM all the same.
 */
export const SECTION = 'MonitoringSection'

export interface PrimarySite {
  id: string
  publicKey: string
}

/** A specifier's fields as the descriptor holds them; agent/descriptor validates them. */
export interface SpecifierFields {
  metric: string
  monitoringIntervalMs: number
  deliveryIntervalMs: number
  format: string
  function?: string
  when?: { op: string, value: number }
  encrypt?: boolean
}

const INTERVALS = ['monitoringIntervalMs', 'deliveryIntervalMs'] as const
const KNOWN = ['metric', ...INTERVALS, 'format', 'function', 'encrypt'] as const

/**
 * The section as written into fedvm's own envelope, whose default namespace is OVF's; `standalone` in
 * the OVF namespace `ovfNamespace` declares every prefix it uses, to go into an envelope any tool wrote.
 */
export function monitoringSection (primarySite: PrimarySite, specifiers: readonly SpecifierFields[], standalone?: { ovfNamespace: string }): XmlNode {
  const attributes: Record<string, string> = standalone === undefined
    ? { 'ovf:required': 'false' }
    : { 'ovf:required': 'false', 'xmlns:ovf': standalone.ovfNamespace, 'xmlns:fedvm': FEDVM }
  return element(`fedvm:${SECTION}`, attributes, [
    textElement(standalone === undefined ? 'Info' : 'ovf:Info', 'fedvm: the primary site and the monitoring specifiers'),
    element('fedvm:PrimarySite', { id: primarySite.id, publicKey: primarySite.publicKey }),
    ...specifiers.map(specifierElement),
  ])
}

function specifierElement (spec: SpecifierFields): XmlNode {
  const attributes: Record<string, string> = {}
  for (const key of KNOWN) {
    if (spec[key] !== undefined) attributes[key] = String(spec[key])
  }
  // String(number) is the shortest text that reads back as the same double: the value survives the round trip.
  return element('fedvm:Specifier', attributes, spec.when ? [element('fedvm:When', { op: spec.when.op, value: String(spec.when.value) })] : [])
}

/** The section's content as descriptor fields, each recorded in `origins`. */
export function readMonitoringSection (section: XmlElement, origins: Origins): { primarySite: Record<string, unknown>, monitoring: Array<Record<string, unknown>> } {
  for (const child of section.children) {
    if (child.ns === FEDVM && child.local !== 'PrimarySite' && child.local !== 'Specifier') {
      throw new DescriptorFormatError(child.path, `unknown element (fedvm:${SECTION} holds Info, fedvm:PrimarySite and fedvm:Specifier)`)
    }
  }
  const sites = childrenNamed(section, FEDVM, 'PrimarySite')
  if (sites.length === 0) throw new DescriptorFormatError(`${section.path}/fedvm:PrimarySite`, 'missing: the primary site\'s id and public key')
  if (sites.length > 1) throw new DescriptorFormatError(sites[1].path, 'one primary site only')
  const site = sites[0]
  origins.record(['primarySite'], site.path)
  for (const key of ['id', 'publicKey']) origins.record(['primarySite', key], `${site.path}/@${key}`)
  const primarySite = plainAttributes(site, origins, ['primarySite'])
  const monitoring = childrenNamed(section, FEDVM, 'Specifier').map((spec, i) => readSpecifier(spec, origins, ['monitoring', i]))
  return { primarySite, monitoring }
}

function readSpecifier (spec: XmlElement, origins: Origins, field: readonly PropertyKey[]): Record<string, unknown> {
  origins.record(field, spec.path)
  for (const key of KNOWN) origins.record([...field, key], `${spec.path}/@${key}`)
  const fields: Record<string, unknown> = plainAttributes(spec, origins, field)
  for (const key of INTERVALS) {
    const attr = attributeNamed(spec, '', key)
    if (attr !== undefined) fields[key] = milliseconds(attr.value, attr.path)
  }
  const encrypt = attributeNamed(spec, '', 'encrypt')
  if (encrypt !== undefined) fields.encrypt = xsBoolean(encrypt.value, encrypt.path)
  for (const child of spec.children) {
    if (child.ns === FEDVM && child.local !== 'When') throw new DescriptorFormatError(child.path, 'unknown element (fedvm:Specifier holds at most one fedvm:When)')
  }
  const whens = childrenNamed(spec, FEDVM, 'When')
  if (whens.length > 1) throw new DescriptorFormatError(whens[1].path, 'one predicate per specifier')
  if (whens.length === 1) {
    const when = whens[0]
    origins.record([...field, 'when'], when.path)
    for (const key of ['op', 'value']) origins.record([...field, 'when', key], `${when.path}/@${key}`)
    const predicate = plainAttributes(when, origins, [...field, 'when'])
    const value = attributeNamed(when, '', 'value')
    if (value !== undefined) predicate.value = decimal(value.value, value.path)
    fields.when = predicate
  }
  return fields
}

/**
 * The element's unqualified attributes as strings, each recorded. Unknown ones are kept, so the
 * descriptor schema refuses them by name rather than the converter dropping a misspelt field.
 */
function plainAttributes (element: XmlElement, origins: Origins, field: readonly PropertyKey[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  for (const attr of element.attributes) {
    if (attr.ns !== '') continue
    fields[attr.local] = attr.value
    origins.record([...field, attr.local], attr.path)
  }
  return fields
}

function milliseconds (text: string, where: string): number {
  if (!/^[0-9]+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) throw new DescriptorFormatError(where, `must be a whole number of milliseconds ≥ 0 (found "${text}")`)
  return Number(text)
}

/** xs:double's decimal and exponent forms; INF and NaN are refused (no predicate can use them). */
function decimal (text: string, where: string): number {
  const trimmed = text.trim()
  if (!/^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(trimmed) || !Number.isFinite(Number(trimmed))) {
    throw new DescriptorFormatError(where, `must be a finite decimal number (found "${text}")`)
  }
  return Number(trimmed)
}

/** xs:boolean: true, false, 1, 0. */
function xsBoolean (text: string, where: string): boolean {
  switch (text.trim()) {
    case 'true': case '1': return true
    case 'false': case '0': return false
    default: throw new DescriptorFormatError(where, `must be true or false (found "${text}")`)
  }
}

