import { originCode, ProtocolError, toProtocolError } from '../errors'
import type { Caller } from './caller'
import { handleTransferAbort, handleTransferCommit, recordPassedOn, type DestinationDeps } from './destination'
import { faultPoint } from './fault-point'
import { askPartner } from './intermediary'
import type { MigrationDecision, MigrationRecord, MigrationStore } from './migration-record'
import { AbortAnswerSchema, CommitAnswerSchema } from './partner-answers'
import { handleTransferCancel, handleTransferConfirm, type SourceDeps } from './source'

/**
 * The Controller's Confirm phase: a decision, once recorded, is carried to both sides (through the
 * chain of delegation, as every operation is) until each has acted on it. Commit goes to the
 * Destination first: the Source releases its copy only once the Destination runs the VM.
 */
export interface SettleDeps extends DestinationDeps, SourceDeps {
  hosts: DestinationDeps['hosts']
  proxies: DestinationDeps['proxies'] & SourceDeps['proxies']
  identity: DestinationDeps['identity'] & SourceDeps['identity']
  limits: DestinationDeps['limits'] & SourceDeps['limits']
  locations: DestinationDeps['locations'] & SourceDeps['locations']
  routes: DestinationDeps['routes'] & SourceDeps['routes']
  tokens: DestinationDeps['tokens'] & SourceDeps['tokens']
  migrations: MigrationStore
}

/** Records a decision (synced to disk by the store) before anyone is told of it. */
export function decide (deps: Pick<SettleDeps, 'migrations' | 'log'>, record: MigrationRecord, decision: MigrationDecision, extra: Partial<MigrationRecord> = {}): MigrationRecord {
  const next = { ...record, ...extra, decision }
  deps.migrations.putMigration(next)
  deps.log({ event: 'migration-decided', vm: record.vmId, migration: record.id, decision })
  return next
}

export interface Settled {
  record: MigrationRecord
  /** Why the Destination refused to run the VM (the decision became abort), or why a side could not be reached. */
  error?: ProtocolError
}

/**
 * Carries the record's decision to the sides that have not acted on it yet. A side that cannot be
 * reached is left for the next attempt (resolver.ts); a Destination that cannot run the VM turns
 * commit into abort (it dropped the files and says so again if asked). `handOverSource`: on abort the
 * Source is kept held for the Controller's next offer instead of running the VM again.
 */
export async function settleMigration (deps: SettleDeps, id: string, options: { handOverSource?: boolean } = {}): Promise<Settled> {
  let record = deps.migrations.migration(id)
  if (record === undefined) throw new ProtocolError('internal', `no migration record ${id}`)
  let error: ProtocolError | undefined
  if (record.decision === 'commit') {
    try {
      await commitDestination(deps, record)
    } catch (err) {
      const e = toProtocolError(err)
      if (!refusedByDestination(e)) {
        deps.log({ event: 'commit-failed', vm: record.vmId, migration: id, code: e.code, retryable: e.retryable })
        return { record, error: e }
      }
      deps.log({ event: 'commit-refused', vm: record.vmId, migration: id, code: e.code })
      record = decide(deps, record, 'abort', { destinationSettled: true })
      error = e
    }
    if (record.decision === 'commit') {
      faultPoint('controller:destination-committed')
      if (record.via !== deps.self) recordPassedOn(deps, record.upstream, record.vmId, record.via, record.descriptor)
      record = decide(deps, record, 'committed', { destinationSettled: true })
    }
  }
  if (record.decision === 'committed' && !record.sourceSettled) {
    try {
      // A live migration's Confirm takes Finish's cookie when this process still has it (libvirt confirms without too).
      const cookie = deps.live.finishCookies.get(record.id)
      await handleTransferConfirm(deps, self(deps), { vmId: record.vmId, token: record.sourceToken, ...(cookie === undefined ? {} : { cookie }) })
      record = put(deps, { ...record, sourceSettled: true })
      deps.live.finishCookies.delete(record.id)
    } catch (err) {
      const e = toProtocolError(err)
      deps.log({ event: 'confirm-failed', vm: record.vmId, migration: id, code: e.code, retryable: e.retryable })
      if (e.retryable) return { record, error: error ?? e }
      record = put(deps, { ...record, sourceSettled: true })
    }
  }
  if (record.decision === 'abort') {
    if (!record.destinationSettled) {
      try {
        await abortDestination(deps, record)
        record = put(deps, { ...record, destinationSettled: true })
      } catch (err) {
        const e = toProtocolError(err)
        deps.log({ event: 'abort-failed', vm: record.vmId, migration: id, code: e.code, retryable: e.retryable })
        // A live migration the Destination may have Finished: only its own "dropped" settles it.
        if (!e.retryable && record.live !== 'finishing') record = put(deps, { ...record, destinationSettled: true })
      }
    }
    // Never at both: the Source resumes a live migration only once the Destination dropped its copy.
    if (record.live === 'finishing' && !record.destinationSettled) return { record, error }
    if (!record.sourceSettled && options.handOverSource === true) {
      record = put(deps, { ...record, sourceSettled: true })
    } else if (!record.sourceSettled) {
      try {
        await handleTransferCancel(deps, self(deps), { vmId: record.vmId, token: record.sourceToken })
        record = put(deps, { ...record, sourceSettled: true })
      } catch (err) {
        const e = toProtocolError(err)
        deps.log({ event: 'cancel-failed', vm: record.vmId, migration: id, code: e.code, retryable: e.retryable })
        if (!e.retryable) record = put(deps, { ...record, sourceSettled: true })
      }
    }
  }
  return { record, error }
}

/**
 * The destination will not take the VM: no room since it offered, or its host could not run it (a
 * non-retryable transfer-failed). Source-side answers (cancelled, expired or spent tokens) are not
 * refusals: trying another destination would undo a cancel.
 */
export function refusedByDestination (err: ProtocolError): boolean {
  const code = originCode(err)
  return code === 'no-room' || (code === 'transfer-failed' && !err.retryable)
}

function put (deps: Pick<SettleDeps, 'migrations'>, record: MigrationRecord): MigrationRecord {
  deps.migrations.putMigration(record)
  return record
}

function self (deps: SettleDeps): Caller {
  return { sender: deps.self }
}

async function commitDestination (deps: SettleDeps, record: MigrationRecord): Promise<void> {
  const body = { vmId: record.vmId }
  if (record.via === deps.self) await handleTransferCommit(deps, self(deps), body, record.offerRef)
  else await askPartner(deps, record.via, 'transfer-commit', body, CommitAnswerSchema, { ref: record.offerRef, timeoutMs: deps.limits.transferTimeoutMs })
}

async function abortDestination (deps: SettleDeps, record: MigrationRecord): Promise<void> {
  const body = { vmId: record.vmId }
  if (record.via === deps.self) await handleTransferAbort(deps, self(deps), body, record.offerRef)
  else await askPartner(deps, record.via, 'transfer-abort', body, AbortAnswerSchema, { ref: record.offerRef })
}
