import { stat } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { CONTROL_ADMIN_OPERATIONS } from '../control/admin-control'
import { ProtocolError, toProtocolError } from '../errors'
import { objectBody, stringField, vmIdField } from '../roles/body-fields'
import { cancelMigrations, runController } from '../roles/controller'
import type { SiteParts } from './site-parts'
import { siteStatus } from './site-status'

/**
 * What the site's own CLI asks its daemon (signed with the site's key; no other sender is accepted):
 * place a new VM (primary placement), migrate one (Controller), evict one (Forced migration "away"
 * to the site that delegated it here), and list where VMs went.
 */
export const ADMIN_OPERATIONS: Record<string, (site: SiteParts, body: unknown) => Promise<unknown>> = {
  'admin-place': place,
  'admin-migrate': async (site, rawBody) => {
    const body = objectBody(rawBody)
    return runController(site, vmIdField(body), [], body.to === undefined ? undefined : stringField(body, 'to', 128))
  },
  'admin-evict': evict,
  'admin-cancel': cancel,
  ...CONTROL_ADMIN_OPERATIONS,
  'admin-status': async (site) => siteStatus(site),
}

async function place (site: SiteParts, rawBody: unknown): Promise<unknown> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const dir = stringField(body, 'dir')
  if (!isAbsolute(dir) || !(await stat(dir).catch(() => undefined))?.isDirectory()) throw new ProtocolError('bad-request', 'dir must be an absolute path to a directory')
  if (site.state.location(vmId) !== undefined) throw new ProtocolError('bad-request', `this site already manages ${vmId}`)
  const version = site.newVersion()
  site.state.setLocation({ vmId, kind: 'intake', target: dir, upstream: null, descriptor: body.descriptor ?? { vmId }, version })
  try {
    return await runController(site, vmId, [])
  } catch (err) {
    site.state.dropLocationIf(vmId, version)
    throw err
  }
}

/** Scenario 2, step 0: this site must see the VM go; the site that delegated it here performs or escalates. */
async function evict (site: SiteParts, rawBody: unknown): Promise<unknown> {
  const vmId = vmIdField(objectBody(rawBody))
  const record = site.state.location(vmId)
  if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
  if (record.upstream === null) {
    return { outcome: 'performed', by: site.self, result: await runController(site, vmId, []) }
  }
  try {
    return await site.partners.send(record.upstream, 'forced-migration', { vmId, mode: 'away' }, undefined, { timeoutMs: site.config.limits.transferTimeoutMs })
  } catch (err) {
    throw toProtocolError(err)
  }
}

/**
 * Cancels the migrations of a VM this site runs as Controller and has not decided yet: the decision
 * is abort, the source proxy refuses further ranges, the destination's pull stops and its files go,
 * and the VM stays where it was.
 */
async function cancel (site: SiteParts, rawBody: unknown): Promise<unknown> {
  return cancelMigrations(site, vmIdField(objectBody(rawBody)))
}
