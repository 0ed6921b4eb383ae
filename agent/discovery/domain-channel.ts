import { attribute, domainName } from '../../host/libvirt/lifecycle-xml'
import { KPI_CHANNEL } from '../../host/vm-folder/vm-folder'

/**
 * Where the host end of the VM's KPI channel listens: the `path` of
 * `<channel type='unix'><source mode='bind' path='…'/><target type='virtio' name='org.fedvm.kpi.0'/></channel>`
 * in a domain XML; undefined when the VM has no such channel (it is then followed for libvirt stats only).
 */
export function kpiChannelSocket (xml: string): string | undefined {
  for (const channel of xml.match(/<channel\b[\s\S]*?<\/channel>/g) ?? []) {
    if (attribute(/<channel\b[^>]*>/.exec(channel)?.[0], 'type') !== 'unix') continue
    const target = /<target\b[^>]*>/.exec(channel)?.[0]
    if (attribute(target, 'type') !== 'virtio' || attribute(target, 'name') !== KPI_CHANNEL) continue
    const source = /<source\b[^>]*>/.exec(channel)?.[0]
    if (attribute(source, 'mode') === 'connect') continue // QEMU would be the client: nothing for the agent to connect to
    const path = attribute(source, 'path')
    if (path !== undefined && path !== '') return path
  }
  return undefined
}

export { domainName }
