import { liveStatusesAgree, type LiveStatus } from '../../host/libvirt/live-status'
import { originCode, ProtocolError, toProtocolError } from '../errors'
import { failureCauses } from '../proxy/failure-cause'
import type { Candidate } from './benefit'
import type { Caller } from './caller'
import { handleLiveFinish, handleLivePrepare } from './destination'
import { faultPoint } from './fault-point'
import { askPartner } from './intermediary'
import type { MigrationRecord } from './migration-record'
import { LiveFinishedSchema, LivePreparedSchema, type LiveFinished, type LivePerformed, type LivePrepared, type PreparedSource } from './partner-answers'
import { refusedByDestination, type SettleDeps } from './settle'
import { handleLivePerform, handleTransferVerification } from './source'

export interface LiveTransferResult {
  agreed: boolean
  error?: ProtocolError
  /** dstat (= sstat when agreed): disks, from the Destination's libvirtd. */
  status?: LiveStatus
  /** libvirt's measured downtime of the switchover, when Perform's cookie said. */
  downtimeMs?: number
}

/**
 * The Controller's live path (libvirt's five phases, each on its own side's libvirtd, the cookies
 * carried in the signed protocol through the chain of delegation like every other operation):
 * Begin happened at Forced migration (its cookie is sealed in the ticket); here Prepare at the
 * Destination, Perform at the Source (the streams go through the proxies), Finish at the Destination,
 * then Transfer verification (dstat = sstat). Confirm follows the recorded decision (settle.ts).
 * Not repeated on failure: the decision is abort, and the VM runs at the Source.
 */
export async function liveTransfer (deps: SettleDeps, chosen: Candidate, vmId: string, source: PreparedSource, migration: MigrationRecord): Promise<LiveTransferResult> {
  const self: Caller = { sender: deps.self }
  const started = Date.now()
  let step = 'prepare'
  try {
    const prepared = await destinationCall<LivePrepared>(deps, chosen, 'live-prepare', { vmId, ticket: source.ticket }, LivePreparedSchema, handleLivePrepare)
    step = 'perform'
    if (deps.migrations.migration(migration.id)?.decision !== 'undecided') throw new ProtocolError('transfer-cancelled', 'the transfer was cancelled')
    // From here the VM may run at the Destination (it Finishes on the Source's in-band "Perform done"):
    // an abort must reach it before the Source resumes.
    markLive(deps, migration, 'finishing')
    let performed: LivePerformed
    try {
      performed = await handleLivePerform(deps, self, { vmId, token: source.token, cookie: prepared.cookie })
    } catch (err) {
      // The Source answered that Perform failed: it said nothing in-band, nothing runs at the Destination.
      if (answeredBySource(toProtocolError(err))) markLive(deps, migration, 'prepared')
      throw err
    }
    faultPoint('controller:received')
    step = 'finish'
    let finished: LiveFinished
    try {
      finished = await destinationCall<LiveFinished>(deps, chosen, 'live-finish', { vmId, cookie: performed.cookie }, LiveFinishedSchema, handleLiveFinish)
    } catch (err) {
      // The Destination answered that Finish failed (nothing runs there): the Source may resume at once.
      if (refusedByDestination(toProtocolError(err))) markLive(deps, migration, 'prepared')
      throw err
    }
    deps.live.finishCookies.set(migration.id, finished.cookie)
    step = 'verification'
    const sstat = await handleTransferVerification(deps, self, { vmId, token: source.token, dstat: finished.status })
    const agreed = sstat.state === 'verified' && 'uuid' in sstat.status && liveStatusesAgree(finished.status, sstat.status)
    deps.log({ event: 'live-transfer', vm: vmId, agreed, ms: Date.now() - started, downtimeMs: performed.downtimeMs ?? null })
    if (!agreed) return { agreed: false, error: new ProtocolError('transfer-failed', 'the destination and source statuses differ', { retryable: false }) }
    return { agreed: true, status: finished.status, ...(performed.downtimeMs === undefined ? {} : { downtimeMs: performed.downtimeMs }) }
  } catch (err) {
    const error = toProtocolError(err)
    deps.log({ event: 'live-transfer-failed', vm: vmId, step, code: error.code, ms: Date.now() - started, causes: failureCauses(err) })
    return { agreed: false, error }
  }
}

/** Records how far the live path got (the record as it stands now: settling may have changed it since). */
function markLive (deps: SettleDeps, migration: MigrationRecord, live: NonNullable<MigrationRecord['live']>): void {
  deps.migrations.putMigration({ ...(deps.migrations.migration(migration.id) ?? migration), live })
}

/** A definite answer from the Source (not a lost or timed-out call): Perform did not run to its end there. */
function answeredBySource (err: ProtocolError): boolean {
  const code = originCode(err)
  return (code === 'transfer-failed' && !err.retryable) || code === 'transfer-cancelled'
}

/** An operation on the Destination: this site's own handler for its own offer, else the partner's through the chain. */
async function destinationCall<T> (
  deps: SettleDeps, chosen: Candidate, op: 'live-prepare' | 'live-finish', body: Record<string, unknown>,
  schema: Parameters<typeof askPartner<T>>[4], local: (deps: SettleDeps, caller: Caller, body: unknown, ref: string) => Promise<T>
): Promise<T> {
  if (chosen.via === deps.self) return await local(deps, { sender: deps.self }, body, chosen.offer.ref)
  return await askPartner(deps, chosen.via, op, body, schema, { ref: chosen.offer.ref, timeoutMs: deps.limits.transferTimeoutMs })
}
