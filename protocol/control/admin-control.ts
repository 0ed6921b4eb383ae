import { ProtocolError } from '../errors'
import { objectBody, vmIdField } from '../roles/body-fields'
import type { ControlDeps } from './control-route'
import { handleDescriptorUpdate } from './descriptor-update'
import { descriptorVersion } from './descriptor-version'
import { handleRunStateChange } from './run-state-change'

/**
 * The Control operations as the site's own CLI starts them (`fedvm vm ...`): this site is the
 * origin, and the operation goes down the chain from here. An update that names no version makes
 * the one after the newest this site knows.
 */
export const CONTROL_ADMIN_OPERATIONS: Record<string, (site: ControlDeps, body: unknown) => Promise<unknown>> = {
  'admin-descriptor-update': async (site, rawBody) => {
    const body = objectBody(rawBody)
    const vmId = vmIdField(body)
    if (body.version !== undefined) return handleDescriptorUpdate(site, { sender: site.self }, body)
    const stated = descriptorVersion(body.descriptor)
    if (stated > 0) return handleDescriptorUpdate(site, { sender: site.self }, { ...body, version: stated })
    const record = site.locations.location(vmId)
    if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
    return handleDescriptorUpdate(site, { sender: site.self }, { ...body, version: descriptorVersion(record.descriptor) + 1 })
  },
  'admin-run-state': async (site, body) => handleRunStateChange(site, { sender: site.self }, body),
}
