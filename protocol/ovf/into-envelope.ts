import { DescriptorFormatError } from './errors'
import { monitoringSection, SECTION } from './monitoring-section'
import { FEDVM, OVF_NAMESPACES } from './namespaces'
import { ovfToDescriptor, parseEnvelope, virtualSystem } from './read-ovf'
import { checkedResources, descriptorToOvf, type DescriptorFields } from './write-ovf'
import { attributeNamed, childrenNamed } from './xml-tree'
import { buildXml } from './xml-nodes'

/**
 * The envelope a tool exported (`VBoxManage export`, ovftool) with fedvm's section put into its
 * VirtualSystem, replacing one that is there. Every other byte stays as it was; the package's hardware
 * is not rewritten, so a descriptor whose id or `resources` say otherwise is refused.
 */
export function intoEnvelope (envelopeText: string, descriptor: DescriptorFields): string {
  const envelope = parseEnvelope(envelopeText)
  const system = virtualSystem(envelope)
  const id = attributeNamed(system, OVF_NAMESPACES, 'id')
  if (id?.value !== descriptor.id) throw new DescriptorFormatError(id?.path ?? `${system.path}/@ovf:id`, `the package's VM is ${JSON.stringify(id?.value ?? null)}, the descriptor's id ${JSON.stringify(descriptor.id)}`)
  checkedResources(descriptor.resources)

  const section = buildXml([monitoringSection(descriptor.primarySite, descriptor.monitoring, { ovfNamespace: envelope.ns })])
  const closing = envelopeText.lastIndexOf('</', system.end - 1)
  const edits = childrenNamed(system, FEDVM, SECTION).map((old) => {
    const from = lineStart(envelopeText, old.start)
    const newline = /^\r?\n/.exec(envelopeText.slice(old.end))?.[0] ?? ''
    const ownLine = from === 0 || envelopeText[from - 1] === '\n'
    return { from, to: old.end + (ownLine ? newline.length : 0), text: '' }
  })
  const at = lineStart(envelopeText, closing)
  const indent = at === closing ? '  ' : `${envelopeText.slice(at, closing)}  `
  edits.push({ from: at, to: at, text: `${section.split('\n').map((line) => indent + line).join('\n')}\n` })
  let result = envelopeText
  for (const edit of edits.sort((a, b) => b.from - a.from)) result = result.slice(0, edit.from) + edit.text + result.slice(edit.to)

  const written = ovfToDescriptor(result).descriptor
  const expected = ovfToDescriptor(descriptorToOvf(descriptor)).descriptor
  if (JSON.stringify([written.primarySite, written.monitoring]) !== JSON.stringify([expected.primarySite, expected.monitoring])) {
    throw new DescriptorFormatError(system.path, 'fedvm\'s section does not read back from the envelope as written')
  }
  const held = (written.resources ?? {}) as Record<string, unknown>
  const differs = Object.entries(descriptor.resources ?? {}).filter(([key, value]) => held[key] !== value).map(([key]) => key)
  if (differs.length > 0) {
    const hardware = childrenNamed(system, OVF_NAMESPACES, 'VirtualHardwareSection')[0]
    throw new DescriptorFormatError(hardware.path, `holds ${JSON.stringify(held)}, the descriptor's resources ${JSON.stringify(descriptor.resources)} (${differs.join(', ')} differ): the package's hardware is not rewritten`)
  }
  return result
}

/** Where the line of `index` starts, when only spaces or tabs come before it on that line; else `index`. */
function lineStart (text: string, index: number): number {
  let start = index
  while (start > 0 && (text[start - 1] === ' ' || text[start - 1] === '\t')) start--
  return start === 0 || text[start - 1] === '\n' ? start : index
}
