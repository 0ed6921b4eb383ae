import type { VerifiedRequest } from '../envelope/verify-request'
import { handleMonitoringDeliveries } from '../relay/deliveries-operation'
import type { MonitoringRelay } from '../relay/monitoring-relay'
import type { Caller } from '../roles/caller'
import { runController } from '../roles/controller'
import { handleInitiateTransfer, handleMigrationRequest } from '../roles/destination'
import { handleForcedMigration } from '../roles/forced-migration'
import { handleTransferCancel, handleTransferVerification } from '../roles/source'
import type { SiteParts } from './site-parts'

/** What an operation gets: the site's parts, the relay once monitoring runs, and the verified request. */
export interface OperationContext {
  parts: SiteParts
  relay: MonitoringRelay | undefined
}

export type Operation = (site: OperationContext, caller: Caller, body: unknown, verified: VerifiedRequest) => Promise<unknown>

/**
 * The operations partners may send (POST /v1/OPERATION): the four of paper III-B, cancelling a
 * prepared transfer, and relaying monitoring deliveries. Each names the role that answers it.
 */
export const OPERATIONS: Record<string, Operation> = {
  'migration-request': ({ parts }, caller, body) => handleMigrationRequest(parts, caller, body, { delegate: true }),
  'forced-migration': ({ parts }, caller, body) => handleForcedMigration(parts, caller, body, (vmId, exclude) => runController(parts, vmId, exclude)),
  'initiate-transfer': ({ parts }, caller, body, verified) => handleInitiateTransfer(parts, caller, body, verified.last.ref),
  'transfer-verification': ({ parts }, caller, body) => handleTransferVerification(parts, caller, body),
  'transfer-cancel': ({ parts }, caller, body) => handleTransferCancel(parts, caller, body),
  'monitoring-deliveries': ({ relay }, caller, body) => handleMonitoringDeliveries(relay, caller, body),
}
