import { handleDescriptorUpdate } from '../control/descriptor-update'
import { handleRunStateChange } from '../control/run-state-change'
import type { VerifiedRequest } from '../envelope/verify-request'
import { handleMonitoringDeliveries } from '../relay/deliveries-operation'
import type { MonitoringRelay } from '../relay/monitoring-relay'
import type { Caller } from '../roles/caller'
import { runController } from '../roles/controller'
import { handleInitiateTransfer, handleLiveFinish, handleLivePrepare, handleMigrationRequest, handleTransferAbort, handleTransferCommit } from '../roles/destination'
import { handleForcedMigration } from '../roles/forced-migration'
import { handleMigrationOutcome } from '../roles/migration-outcome'
import { handleMigrationProgress } from '../roles/progress-query'
import { handleLivePerform, handleTransferCancel, handleTransferConfirm, handleTransferVerification } from '../roles/source'
import type { SiteParts } from './site-parts'

/** What an operation gets: the site's parts, the relay once monitoring runs, and the verified request. */
export interface OperationContext {
  parts: SiteParts
  relay: MonitoringRelay | undefined
}

export type Operation = (site: OperationContext, caller: Caller, body: unknown, verified: VerifiedRequest) => Promise<unknown>

/**
 * The operations partners may send (POST /v1/OPERATION): the four of paper III-B, the Controller's
 * decision carried to each side (commit/abort to the Destination, confirm/cancel to the Source), the
 * in-doubt side's question for it, the Controller's question for a migration's progress, and relaying monitoring deliveries. Each names the role that answers it.
 */
export const OPERATIONS: Record<string, Operation> = {
  'migration-request': ({ parts }, caller, body) => handleMigrationRequest(parts, caller, body, { delegate: true }),
  'forced-migration': ({ parts }, caller, body) => handleForcedMigration(parts, caller, body, (vmId, exclude) => runController(parts, vmId, exclude)),
  'initiate-transfer': ({ parts }, caller, body, verified) => handleInitiateTransfer(parts, caller, body, verified.last.ref),
  'transfer-verification': ({ parts }, caller, body) => handleTransferVerification(parts, caller, body),
  'transfer-cancel': ({ parts }, caller, body) => handleTransferCancel(parts, caller, body),
  'transfer-confirm': ({ parts }, caller, body) => handleTransferConfirm(parts, caller, body),
  'transfer-commit': ({ parts }, caller, body, verified) => handleTransferCommit(parts, caller, body, verified.last.ref),
  'transfer-abort': ({ parts }, caller, body, verified) => handleTransferAbort(parts, caller, body, verified.last.ref),
  // A live migration's phases between Begin (at Forced migration) and Confirm (transfer-confirm/cancel).
  'live-prepare': ({ parts }, caller, body, verified) => handleLivePrepare(parts, caller, body, verified.last.ref),
  'live-perform': ({ parts }, caller, body) => handleLivePerform(parts, caller, body),
  'live-finish': ({ parts }, caller, body, verified) => handleLiveFinish(parts, caller, body, verified.last.ref),
  'migration-outcome': ({ parts }, caller, body) => handleMigrationOutcome(parts, caller, body),
  'migration-progress': ({ parts }, caller, body, verified) => handleMigrationProgress(parts, caller, body, verified.last.ref),
  'monitoring-deliveries': ({ relay }, caller, body) => handleMonitoringDeliveries(relay, caller, body),
  'descriptor-update': ({ parts }, caller, body) => handleDescriptorUpdate(parts, caller, body),
  'run-state': ({ parts }, caller, body) => handleRunStateChange(parts, caller, body),
}
