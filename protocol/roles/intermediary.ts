import type { z } from 'zod'
import { toProtocolError, type ProtocolError } from '../errors'
import { wrapDownstream } from '../http/problem'
import type { Log } from '../log'
import type { RelayTransfers } from '../proxy/relay-transfers'
import { checkHolder, newToken } from '../proxy/tokens'
import type { Caller } from './caller'
import { OffersSchema, parseAnswer, type Offer } from './partner-answers'
import type { PartnerClient, SendOptions } from './partner-client'
import type { RouteRecord, RouteStore } from './records'

/**
 * The Intermediary (paper III-C): a site that passes a request along the chain of delegation and
 * wraps what comes back, so the asker never learns where the VM or the offer leads. Every operation
 * an Intermediary forwards goes through passAlong.
 */

export interface PassAlongDeps {
  self: string
  partners: PartnerClient
}

/**
 * Asks a partner and checks its answer against `schema`. Used by the origin of a request (the
 * Controller); an Intermediary uses passAlong.
 */
export async function askPartner<T> (deps: PassAlongDeps, to: string, op: string, body: unknown, schema: z.ZodType<T>, options: SendOptions = {}): Promise<T> {
  return parseAnswer(schema, await deps.partners.send(to, op, body, undefined, options), to, op)
}

/**
 * Passes `op` on to the next site of the chain for `caller` (signing one more hop, or anew when this
 * site is the caller) and returns its checked answer. A failure further along comes back as this
 * site's downstream-failed, with the partner's code and never its detail.
 */
export async function passAlong<T> (deps: PassAlongDeps, caller: Caller, to: string, op: string, body: unknown, schema: z.ZodType<T>, options: SendOptions = {}): Promise<T> {
  try {
    const answer = await deps.partners.send(to, op, body, caller.sender === deps.self ? undefined : caller, options)
    return parseAnswer(schema, answer, to, op)
  } catch (err) {
    throw wrapDownstream(toProtocolError(err), op)
  }
}

/**
 * The route this site recorded when it passed `ref` on (an offer's ref, or a Source's token), once
 * `caller` is checked to be the site it answered, for this VM. Undefined when `ref` is not routed
 * through here: then it names this site's own offer or token.
 */
export function intermediaryRoute (deps: { routes: Pick<RouteStore, 'route'> }, kind: RouteRecord['kind'], ref: string, caller: Caller, vmId: string): RouteRecord | undefined {
  const route = deps.routes.route(ref)
  if (route === undefined || route.kind !== kind) return undefined
  checkHolder(route, caller.sender, vmId, kind === 'offer' ? 'offer' : 'transfer')
  return route
}

/**
 * passAlong to the partner `route` leads to: an offer under the partner's own ref; a Source's token
 * is the same at every hop and travels in the body.
 */
export async function passAlongRoute<T> (deps: PassAlongDeps, caller: Caller, route: RouteRecord, op: string, body: unknown, schema: z.ZodType<T>, options: SendOptions = {}): Promise<T> {
  return passAlong(deps, caller, route.partner, op, body, schema, route.kind === 'offer' ? { ...options, ref: route.partnerRef } : options)
}

export interface DelegationDeps extends PassAlongDeps {
  routes: Pick<RouteStore, 'putRoute'>
  policy: { delegate: boolean, expose: 'all' | 'local' | string[] }
  limits: { hopBudget: number, tokenTtlMs: number }
  log: Log
  /** Present when this site relays the transfers of the offers it passes on (policy.relayTransfers). */
  relay?: Pick<RelayTransfers, 'substitute' | 'reseal'>
}

/** Whether a request from this caller may still be forwarded one more hop. */
export function mayForward (deps: { limits: { hopBudget: number } }, caller: Caller): boolean {
  if (caller.verified === undefined) return deps.limits.hopBudget >= 1
  return caller.verified.last.budget >= 1
}

/**
 * The Controller's step 2 as an Intermediary does it: every eligible partner at once (never one the
 * request already passed: loops); a failing partner only costs its offers.
 */
export async function askPartners (deps: Pick<DelegationDeps, 'self' | 'partners' | 'log'>, caller: Caller | undefined, vmId: string, body: unknown, exclude: Set<string>, failures?: Array<{ partner: string, error: ProtocolError }>): Promise<Array<{ partner: string, offer: Offer }>> {
  const passed = new Set([deps.self, ...(caller?.verified?.request.hops.map((h) => h.from) ?? [])])
  const partners = deps.partners.ids().filter((id) => !passed.has(id) && !exclude.has(id) && id !== caller?.sender)
  const answers = await Promise.all(partners.map(async (partner) => {
    try {
      const offers = parseAnswer(OffersSchema, await deps.partners.send(partner, 'migration-request', body, caller), partner, 'migration-request')
      return offers.map((offer) => ({ partner, offer }))
    } catch (err) {
      deps.log({ event: 'partner-failed', op: 'migration-request', partner, code: toProtocolError(err).code })
      failures?.push({ partner, error: toProtocolError(err) })
      return []
    }
  }))
  return answers.flat()
}

/**
 * The partners' offers this site passes on under its exposure policy, each wrapped in a route of
 * ours (one delegation deeper) so the asker never learns where it leads.
 */
export function exposeOffers (deps: DelegationDeps, caller: Caller, vmId: string, delegated: Array<{ partner: string, offer: Offer }>): Offer[] {
  const expose = deps.policy.expose
  const exposed = expose === 'all' ? delegated : expose === 'local' ? [] : delegated.filter((d) => expose.includes(d.partner))
  return exposed.map(({ partner, offer }) => {
    const ref = newToken()
    deps.routes.putRoute({ ref, kind: 'offer', vmId, partner, partnerRef: offer.ref, requester: caller.sender, locationVersion: null, expiresAt: Date.now() + deps.limits.tokenTtlMs })
    const passed = { ...offer, ref, depth: offer.depth + 1 }
    if (deps.relay === undefined) return passed
    // A relayed transfer carries files only: QEMU's streams do not pass through this site's proxy.
    const { live: _live, ...cold } = passed
    return deps.relay.substitute(ref, cold)
  })
}
