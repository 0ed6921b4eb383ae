import { ProtocolError, toProtocolError } from '../errors'
import { objectBody, vmIdField } from './body-fields'
import type { Caller } from './caller'
import { passAlong } from './intermediary'
import { AwayAnswerSchema, type PreparedSource } from './partner-answers'
import type { LocationRecord, LocationStore } from './records'
import { prepareForLeaving, type SourceDeps } from './source'

export interface ForcedMigrationDeps extends SourceDeps {
  locations: Pick<LocationStore, 'location' | 'dropLocationIf'>
}

/** Runs the Controller for a VM, never offering it to the sites in `exclude`. */
export type ControllerRunner = (vmId: string, exclude: string[]) => Promise<unknown>

/**
 * Forced migration. mode "prepare" (Controller → Source, through the chain of delegation): the VM is
 * prepared for leaving and the source proxy's ⟨uri, token⟩ comes back, sealed for the destination.
 * mode "away" (Source → the site that delegated the VM to it): that site performs the migration as
 * Controller or escalates to its own upstream; it is never ignored and the answer is signed.
 */
export async function handleForcedMigration (deps: ForcedMigrationDeps, caller: Caller, rawBody: unknown, runController: ControllerRunner): Promise<unknown> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const record = deps.locations.location(vmId)
  if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
  if (body.mode === 'prepare') return prepareForLeaving(deps, caller, vmId, record, body)
  if (body.mode === 'away') return moveAway(deps, caller, vmId, record, runController)
  throw new ProtocolError('bad-request', 'mode must be "prepare" or "away"')
}

/** The Controller's step 4: Forced migration "prepare" on the Source, reached through this site's record of the VM. */
export async function prepareSource (deps: ForcedMigrationDeps, vmId: string, destination: { sealKey: string, tlsFingerprint: string }): Promise<PreparedSource> {
  const record = deps.locations.location(vmId)
  if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
  return prepareForLeaving(deps, { sender: deps.self }, vmId, record, { vmId, mode: 'prepare', destination })
}

async function moveAway (deps: ForcedMigrationDeps, caller: Caller, vmId: string, record: LocationRecord, runController: ControllerRunner): Promise<unknown> {
  if (caller.sender !== deps.self && !(record.kind === 'partner' && record.target === caller.sender)) {
    throw new ProtocolError('not-permitted', 'only the site holding the VM may ask to move it away')
  }
  try {
    const result = await runController(vmId, caller.sender === deps.self ? [] : [caller.sender])
    return { outcome: 'performed', by: deps.self, result }
  } catch (err) {
    const reason = toProtocolError(err)
    deps.log({ event: 'forced-migration-not-performed', vm: vmId, code: reason.code })
    if (record.upstream === null) {
      throw new ProtocolError('forced-migration-failed', `no destination could take the VM and there is no site to escalate to (${reason.code})`, { cause: err })
    }
    // Escalated as this site's own request: the site further up moves the VM away from here.
    const answer = await passAlong(deps, { sender: deps.self }, record.upstream, 'forced-migration', { vmId, mode: 'away' }, AwayAnswerSchema)
    return { outcome: 'escalated', to: record.upstream, answer }
  }
}
