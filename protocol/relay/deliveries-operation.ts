import { ProtocolError } from '../errors'
import { objectBody } from '../roles/body-fields'
import type { Caller } from '../roles/caller'
import type { MonitoringRelay } from './monitoring-relay'

/**
 * The signed `monitoring-deliveries` operation: a neighbour site passes on a batch for VMs this
 * site delegated to it. Each hop signs a new request as its origin, so a forwarded chain (more than
 * one hop record) is refused: no site learns more of the chain than its neighbours.
 */
export async function handleMonitoringDeliveries (relay: MonitoringRelay | undefined, caller: Caller, rawBody: unknown): Promise<{ accepted: number }> {
  if (relay === undefined) throw new ProtocolError('internal', 'monitoring is not running', { retryable: true })
  if ((caller.verified?.request.hops.length ?? 1) !== 1) throw new ProtocolError('not-permitted', 'monitoring deliveries are signed anew by each hop, never forwarded')
  const body = objectBody(rawBody)
  for (const key of Object.keys(body)) if (key !== 'deliveries') throw new ProtocolError('bad-request', `body.${key} is not a field of monitoring-deliveries`)
  return relay.accept(Array.isArray(body.deliveries) ? body.deliveries : notAList(body.deliveries), caller.sender)
}

function notAList (value: unknown): never {
  throw new ProtocolError('bad-request', value === undefined ? 'deliveries is missing' : 'deliveries must be a list')
}
