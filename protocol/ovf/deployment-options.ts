import { DescriptorFormatError } from './errors'
import { OVF_NAMESPACES } from './namespaces'
import { attributeNamed, childrenNamed, type XmlElement } from './xml-tree'

/**
 * The configuration whose hardware is read (DSP0243 §9.8): the one asked for, else the
 * DeploymentOptionSection's `ovf:default="true"` one, else its first. Undefined without that section.
 */
export function chosenConfiguration (envelope: XmlElement, asked: string | undefined): string | undefined {
  const section = childrenNamed(envelope, OVF_NAMESPACES, 'DeploymentOptionSection')[0]
  const configurations = section === undefined ? [] : childrenNamed(section, OVF_NAMESPACES, 'Configuration')
  const ids = configurations.map((configuration) => attributeNamed(configuration, OVF_NAMESPACES, 'id')?.value ?? '')
  if (asked !== undefined) {
    if (!ids.includes(asked)) throw new DescriptorFormatError(`${envelope.path}/DeploymentOptionSection`, `no Configuration "${asked}" (there ${ids.length === 0 ? 'is none' : `are ${ids.join(', ')}`})`)
    return asked
  }
  const byDefault = configurations.find((configuration) => attributeNamed(configuration, OVF_NAMESPACES, 'default')?.value.trim() === 'true')
  if (byDefault !== undefined) return attributeNamed(byDefault, OVF_NAMESPACES, 'id')?.value
  return ids[0]
}

/** An item applies to every configuration, or only to those its `ovf:configuration` lists (space-separated). */
export function appliesTo (item: XmlElement, configuration: string | undefined): boolean {
  const listed = attributeNamed(item, OVF_NAMESPACES, 'configuration')
  if (listed === undefined) return true
  if (configuration === undefined) throw new DescriptorFormatError(listed.path, 'names a configuration, but the envelope has no DeploymentOptionSection')
  return listed.value.trim().split(/\s+/).includes(configuration)
}
