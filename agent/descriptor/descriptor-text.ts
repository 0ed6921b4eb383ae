import { DescriptorFormatError } from '../../protocol/ovf/errors'
import { isOvf, readDescriptorDocument } from '../../protocol/ovf/descriptor-document'
import { ovfToDescriptor, type EnvelopeDescriptor } from '../../protocol/ovf/read-ovf'
import { AgentError } from '../errors'
import { DescriptorSchema, parseDescriptor, type VmDescriptor } from './vm-descriptor'

/**
 * A descriptor file's text in either form (JSON, or an OVF envelope with fedvm's section), checked
 * against the descriptor schema. A problem in an envelope is named by its element
 * (`…/fedvm:Specifier[2]/@function: …`), one in JSON by its field (`monitoring[1].function: …`).
 * `configuration` picks an envelope's deployment option (its default otherwise).
 */
export function descriptorFromText (text: string, source: string, options: { configuration?: string } = {}): VmDescriptor {
  if (!isOvf(text)) return parseDescriptor(readDescriptorDocument(text, source), source)
  let envelope: EnvelopeDescriptor
  try {
    envelope = ovfToDescriptor(text, options)
  } catch (err) {
    throw err instanceof DescriptorFormatError ? err.in(source) : err
  }
  const result = DescriptorSchema.safeParse(envelope.descriptor)
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => `${envelope.elementOf(issue.path)}: ${issue.message}`)
  throw new AgentError('DESCRIPTOR_INVALID', `${source}: ${problems.join('; ')}`)
}
