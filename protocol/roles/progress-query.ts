import { ProtocolError } from '../errors'
import type { TokenStore } from '../proxy/token-record'
import { heldToken } from '../proxy/tokens'
import { objectBody, stringField, vmIdField } from './body-fields'
import { arrivalFigures } from './arrival-progress'
import type { Caller } from './caller'
import { intermediaryRoute, passAlongRoute, type PassAlongDeps } from './intermediary'
import type { LiveSessions } from './live-sessions'
import type { ProgressBoard } from './migration-progress'
import { ProgressAnswerSchema, type ProgressAnswer } from './partner-answers'
import type { RouteStore } from './records'

/** How long one progress query may take: it is asked again soon, so a slow answer is not worth waiting for. */
export const PROGRESS_QUERY_TIMEOUT_MS = 2000

export interface ProgressQueryDeps extends PassAlongDeps {
  tokens: Pick<TokenStore, 'token'>
  routes: Pick<RouteStore, 'route'>
  progress: Pick<ProgressBoard, 'get'>
  live: LiveSessions
}

/**
 * migration-progress (Controller → either end of a migration, through the chain of delegation): how
 * far the migration has got, from the board of the site where its data moves (the Destination's pull
 * for a cold transfer, the Source's job for a live one). A live arrival's Destination answers with
 * what it received (arrival-progress.ts), which the Controller uses only when the Source has no
 * figures (progress-watch.ts). The Destination end is named by the offer's
 * ref (as Initiate transfer names it), the Source end by its token (as Transfer verification does);
 * only the site the offer or the transfer was made for may ask, and the answer holds figures only.
 * A site that moves nothing for the VM answers `progress: null`.
 */
export async function handleMigrationProgress (deps: ProgressQueryDeps, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<ProgressAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  if (body.end === 'destination') {
    if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
    const route = intermediaryRoute(deps, 'offer', ref, caller, vmId)
    if (route !== undefined) return passAlongRoute(deps, caller, route, 'migration-progress', body, ProgressAnswerSchema, { timeoutMs: PROGRESS_QUERY_TIMEOUT_MS, quiet: true })
    // Any state will do (a spent or cancelled token's migration simply has no progress left): only who holds it counts.
    heldToken(deps.tokens, ref, 'destination', caller.sender, vmId)
    const arriving = deps.live.arriving.get(ref)
    return { progress: deps.progress.get(vmId) ?? (arriving === undefined ? null : arrivalFigures(arriving, Date.now())) }
  }
  if (body.end === 'source') {
    const token = stringField(body, 'token', 100)
    const route = intermediaryRoute(deps, 'source', token, caller, vmId)
    if (route !== undefined) return passAlongRoute(deps, caller, route, 'migration-progress', body, ProgressAnswerSchema, { timeoutMs: PROGRESS_QUERY_TIMEOUT_MS, quiet: true })
    heldToken(deps.tokens, token, 'source', caller.sender, vmId)
    return { progress: deps.progress.get(vmId) ?? null }
  }
  throw new ProtocolError('bad-request', 'end must be "destination" or "source"')
}
