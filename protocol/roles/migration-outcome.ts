import { ProtocolError } from '../errors'
import type { ActiveMigrations } from './active-migrations'
import { objectBody, stringField, vmIdField } from './body-fields'
import type { Caller } from './caller'
import { recordPassedOn } from './destination'
import { askPartner, type PassAlongDeps } from './intermediary'
import type { MigrationRecord, MigrationStore, OutcomeDecision } from './migration-record'
import { OutcomeAnswerSchema, type OutcomeAnswer } from './partner-answers'
import type { LocationStore, RouteStore } from './records'
import { decide } from './settle'
import type { Log } from '../log'

/**
 * migration-outcome: a side left in doubt (a Destination holding a complete arrival, a Source holding
 * the VM for leaving) asks what the Controller decided. The question travels up the chain one
 * neighbour at a time, each Intermediary asking as itself with the ref it was given (location
 * unawareness: nobody learns more than its neighbours); the Controller answers from its record.
 */
export interface OutcomeDeps extends PassAlongDeps {
  migrations: MigrationStore
  active: ActiveMigrations
  routes: Pick<RouteStore, 'route' | 'offerRouteTo'>
  locations: Pick<LocationStore, 'location' | 'setLocation' | 'dropLocationIf'>
  newVersion: () => string
  log: Log
}

export async function handleMigrationOutcome (deps: OutcomeDeps, caller: Caller, rawBody: unknown): Promise<OutcomeAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const ref = stringField(body, 'ref', 100)
  // As Controller: the record of the offer (asked by the Destination's side) or of the Source's token.
  const records = deps.migrations.migrationsOf(vmId)
  const asDestination = records.find((m) => m.offerRef === ref)
  if (asDestination !== undefined) {
    if (asDestination.via !== caller.sender) throw new ProtocolError('token-foreign', 'the offer was made to another site or for another VM')
    return { decision: forDestination(deps, asDestination) }
  }
  const asSource = records.find((m) => m.sourceToken === ref)
  if (asSource !== undefined) {
    if (asSource.sourceVia !== caller.sender) throw new ProtocolError('token-foreign', 'the transfer was prepared for another site or VM')
    return { decision: forSource(deps, asSource) }
  }
  // As Intermediary: one hop up. On commit this site's own record follows, as the decision's push would have done.
  const offer = deps.routes.offerRouteTo(caller.sender, ref)
  if (offer !== undefined && offer.vmId === vmId && offer.requester !== deps.self) {
    const answer = await askUp(deps, offer.requester, vmId, offer.ref)
    if (answer.decision === 'commit') recordPassedOn(deps, offer.requester, vmId, offer.partner)
    return answer
  }
  const source = deps.routes.route(ref)
  if (source !== undefined && source.kind === 'source' && source.partner === caller.sender && source.vmId === vmId && source.requester !== deps.self) {
    const answer = await askUp(deps, source.requester, vmId, ref)
    if (answer.decision === 'commit' && source.locationVersion !== null) deps.locations.dropLocationIf(vmId, source.locationVersion)
    return answer
  }
  // No record and no route: no decision to commit was ever taken here for it.
  return { decision: deps.active.has(vmId) ? 'pending' : 'abort' }
}

/** Asks the site above, as this site's own request. */
export async function askUp (deps: PassAlongDeps, to: string, vmId: string, ref: string): Promise<OutcomeAnswer> {
  return askPartner(deps, to, 'migration-outcome', { vmId, ref }, OutcomeAnswerSchema)
}

/** The Destination may act on commit as soon as it is recorded. */
function forDestination (deps: OutcomeDeps, record: MigrationRecord): OutcomeDecision {
  if (record.decision === 'commit' || record.decision === 'committed') return 'commit'
  return undecidedOr(deps, record)
}

/** The Source releases only once the Destination runs the VM; until the next offer is tried it is held. */
function forSource (deps: OutcomeDeps, record: MigrationRecord): OutcomeDecision {
  if (record.decision === 'committed') return 'commit'
  if (record.decision === 'commit' || deps.active.has(record.vmId)) return 'pending'
  return undecidedOr(deps, record)
}

/** Undecided with no Controller running for it (this site restarted since): the decision is abort, recorded first. */
function undecidedOr (deps: OutcomeDeps, record: MigrationRecord): OutcomeDecision {
  if (record.decision === 'abort') return 'abort'
  if (deps.active.has(record.vmId)) return 'pending'
  decide(deps, record, 'abort')
  return 'abort'
}
