import type { Demand } from '../../host/vm-folder/vm-host'
import { ProtocolError, toProtocolError } from '../errors'
import type { Log } from '../log'
import { failureCauses } from '../proxy/failure-cause'
import { manifestBytes } from '../proxy/manifest'
import type { ProxyPool } from '../proxy/proxy-pool'
import { pullVm, type PullResult } from '../proxy/puller'
import { openTicketWith } from '../proxy/ticket'
import { makeTransferKey, transferSealKeys, type TransferKey } from '../proxy/transfer-certificate'
import type { TokenRecord, TokenStore } from '../proxy/token-record'
import { checkHolder, destinationTransferKey, heldToken, newToken, usableToken } from '../proxy/tokens'
import { objectBody, stringField, stringListField, vmIdField, descriptorField } from './body-fields'
import type { Caller } from './caller'
import type { HostDirectory } from './host-directory'
import type { IncomingTransfers } from './incoming-transfers'
import { askPartners, exposeOffers, intermediaryRoute, mayForward, passAlongRoute, type DelegationDeps } from './intermediary'
import { faultPoint } from './fault-point'
import { endLiveArrival, joinLiveFinish, prepareLiveArrival, type LiveArrivalDeps } from './live-arrival'
import {
  AbortAnswerSchema, CommitAnswerSchema, LiveFinishedSchema, LivePreparedSchema, TransferStatusSchema,
  type AbortAnswer, type CommitAnswer, type LiveFinished, type LivePrepared, type Offer, type TransferStatus
} from './partner-answers'
import { coldProgress, type ProgressBoard } from './migration-progress'
import type { LocationStore, RouteStore } from './records'
import { demandOf, vmsThatFit } from './room'
import type { TokenLocks } from './token-locks'

/**
 * The Destination (paper III-C): offers room for a VM on its hosts (Migration request), and when the
 * Controller picks an offer, pulls the VM's files from the Source's proxy (Initiate transfer). The
 * arrival stays pending (files complete, no VM, not listed as this site's) until the Controller's
 * recorded decision: commit makes the files a VM here, abort drops them. Requests for offers it only
 * passed along go to the Intermediary.
 */
export interface DestinationDeps extends DelegationDeps, LiveArrivalDeps {
  hosts: HostDirectory
  tokens: Pick<TokenStore, 'token' | 'putToken' | 'setTokenState'>
  locations: Pick<LocationStore, 'location' | 'setLocation'>
  routes: Pick<RouteStore, 'route' | 'putRoute'>
  proxies: Pick<ProxyPool, 'choose'>
  /** This site's keys: an Intermediary that relays substitutes them in the offers it passes on (offers of its own carry a transfer key's). */
  identity: { sealPublicKey: string, tlsFingerprint: string, tls: { key: string, cert: string }, keysDir: string }
  policy: DelegationDeps['policy'] & { acceptFrom: string[] }
  limits: DelegationDeps['limits'] & { transferTimeoutMs: number, parallelRanges: number, requestTimeoutMs: number }
  transfers: IncomingTransfers
  /** Where the pull reports how far it has got (`fedvm site status`, and the Controller's migration-progress query). */
  progress: Pick<ProgressBoard, 'report' | 'end'>
  settling: TokenLocks
  newVersion: () => string
}

/**
 * Migration request: offers for each local host with room, then, when policy allows, the offers of
 * partners asked in parallel (this site as Intermediary), then exposure policy.
 */
export async function handleMigrationRequest (deps: DestinationDeps, caller: Caller, rawBody: unknown, options: { delegate: boolean }): Promise<{ offers: Offer[] }> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const exclude = new Set(stringListField(body, 'exclude'))
  if (caller.sender !== deps.self && !deps.policy.acceptFrom.includes(caller.sender)) {
    throw new ProtocolError('not-permitted', `this site does not accept VMs from ${caller.sender}`)
  }
  const descriptor = descriptorField(body)
  const local = await localOffers(deps, caller, vmId, descriptor, demandOf(descriptor))
  let delegated: Array<{ partner: string, offer: Offer }> = []
  if (options.delegate && deps.policy.delegate && mayForward(deps, caller)) {
    delegated = await askPartners(deps, caller, vmId, rawBody, exclude)
  }
  const wrapped = exposeOffers(deps, caller, vmId, delegated)
  deps.log({ event: 'migration-request', from: caller.sender, vm: vmId, local: local.length, delegated: delegated.length, exposed: local.length + wrapped.length })
  return { offers: [...local, ...wrapped] }
}

/**
 * One offer per host that has room for the VM's demand (VM slots, memory, vCPUs); a host that cannot
 * say is skipped. The offers of one request share one transfer key made for it (the Controller sees
 * them as one destination and may hand the prepared Source from one to the next): what they carry
 * names no site, and the next request gets other keys.
 */
async function localOffers (deps: DestinationDeps, caller: Caller, vmId: string, descriptor: unknown, demand: Demand): Promise<Offer[]> {
  const offers: Offer[] = []
  let key: TransferKey | undefined
  for (const host of deps.hosts.all()) {
    let free: number
    try {
      if (await host.has(vmId)) continue
      free = vmsThatFit(await host.capacity(), demand)
    } catch (err) {
      deps.log({ event: 'host-unavailable', host: host.id, error: (err as Error).message })
      continue
    }
    if (free < 1) continue
    key ??= await makeTransferKey()
    const token = newToken()
    deps.tokens.putToken({
      token, role: 'destination', proxy: deps.proxies.choose(), vmId, hostId: host.id, boundTo: caller.sender, descriptor,
      manifest: null, state: 'open', expiresAt: Date.now() + deps.limits.tokenTtlMs, locationVersion: null, requester: caller.sender, transferKey: key,
    })
    offers.push({ ref: token, sealKey: key.seal.publicKey, tlsFingerprint: key.tls.fingerprint, depth: 0, free, ...(host.prepareLiveArrival === undefined ? {} : { live: true }) })
  }
  return offers
}

/**
 * Initiate transfer: the destination proxy pulls from the source proxy named in the sealed ticket.
 * Idempotent: a finished transfer answers its status again without copying, a running one is
 * joined, and a broken one resumes from the chunks already verified on disk. An offer this site
 * only passed along is followed to the partner that made it.
 */
export async function handleInitiateTransfer (deps: DestinationDeps, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<TransferStatus> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const ticket = stringField(body, 'ticket', 8192)
  if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
  const route = intermediaryRoute(deps, 'offer', ref, caller, vmId)
  if (route !== undefined) {
    const relayed = await deps.relay?.reseal(route.ref, ticket, vmId)
    // A relayed ticket goes in a request of this site's own: a forward carries the origin's signed body unchanged.
    const answer = await passAlongRoute(deps, relayed === undefined ? caller : { sender: deps.self }, route, 'initiate-transfer', relayed === undefined ? body : { ...body, ticket: relayed }, TransferStatusSchema, { timeoutMs: deps.limits.transferTimeoutMs })
    faultPoint('intermediary:initiate')
    return answer
  }
  const token = usableToken(deps.tokens, ref, 'destination', undefined)
  checkHolder(token, caller.sender, vmId, 'offer')
  if (token.state === 'received' && token.manifest !== null) {
    return { status: token.manifest, bytes: manifestBytes(token.manifest), fetchedBytes: 0, reusedBytes: manifestBytes(token.manifest) }
  }
  let running = deps.transfers.pulls.get(token.token)
  if (running === undefined) {
    running = receive(deps, token.token, token.hostId, vmId, ticket, token.descriptor, destinationTransferKey(token))
    deps.transfers.pulls.set(token.token, running)
    running.finally(() => deps.transfers.pulls.delete(token.token)).catch(() => {})
  }
  const result = await running
  return { status: result.manifest, bytes: manifestBytes(result.manifest), fetchedBytes: result.fetchedBytes, reusedBytes: result.reusedBytes }
}

async function receive (deps: DestinationDeps, token: string, hostId: string, vmId: string, sealedTicket: string, descriptor: unknown, key: TransferKey): Promise<PullResult> {
  const { transfers, log } = deps
  const initiated = Date.now()
  const ticket = await openTicketWith(sealedTicket, transferSealKeys(key), vmId)
  const host = deps.hosts.get(hostId, vmId)
  // Offers reserve nothing: the host may have filled up since it offered.
  if (!await host.has(vmId) && vmsThatFit(await host.capacity(), demandOf(descriptor)) < 1) throw new ProtocolError('no-room', 'the offered host has no room left')
  const dir = await host.receive(vmId)
  const started = Date.now()
  const attempt = (transfers.attempts.get(token) ?? 0) + 1
  transfers.attempts.set(token, attempt)
  let lastLog = 0
  let result: PullResult
  try {
    result = await pullVm({
      ticket, dir, clientCert: key.tls,
      parallel: deps.limits.parallelRanges, timeoutMs: deps.limits.requestTimeoutMs,
      onProgress: (p) => {
        const now = Date.now()
        const progress = coldProgress(p, now - started, now)
        deps.progress.report(vmId, progress)
        const bytes = p.fetchedBytes + p.reusedBytes
        if (now - lastLog < 1000 && bytes < p.totalBytes) return
        lastLog = now
        log({ event: 'transfer-progress', vm: vmId, bytes, total: p.totalBytes, reused: p.reusedBytes, rateBytesPerSecond: Math.round(p.fetchedBytes / Math.max(0.001, (now - started) / 1000)) })
      },
    })
  } catch (err) {
    deps.progress.end(vmId)
    const e = toProtocolError(err)
    // Keep partial files only for a retry that can resume from them.
    if (!e.retryable || deps.tokens.token(token)?.state === 'cancelled') await host.abandon(vmId)
    // The cause chain names the file, the byte range and the underlying error (ECONNRESET, a timeout…).
    log({ event: 'transfer-failed', vm: vmId, attempt, code: e.code, kept: e.retryable, ms: Date.now() - started, causes: failureCauses(err) })
    throw e.code === 'internal' ? new ProtocolError('transfer-failed', 'the transfer did not complete', { cause: err }) : e
  }
  deps.progress.end(vmId)
  transfers.attempts.delete(token)
  if (deps.tokens.token(token)?.state === 'cancelled') {
    // The Controller decided abort while the files were still coming.
    await host.abandon(vmId)
    throw new ProtocolError('transfer-cancelled', 'the transfer was cancelled')
  }
  // Complete and checked, but not a VM yet: the Controller's decision makes it one (handleTransferCommit).
  deps.tokens.setTokenState(token, 'received', result.manifest)
  log({ event: 'transfer-received', vm: vmId, bytes: manifestBytes(result.manifest), fetched: result.fetchedBytes, reused: result.reusedBytes, ms: Date.now() - started, pullMs: Date.now() - started, firstByteMs: result.firstByteAt === undefined ? null : result.firstByteAt - initiated })
  faultPoint('destination:received')
  return result
}

/**
 * The Controller's decision is commit: the received files become the VM on the offered host, and this
 * site records it as its own. Idempotent (a repeated commit answers the same). A host that cannot run
 * the VM refuses (the files go): the Controller then decides abort and the Source keeps the VM.
 */
export async function handleTransferCommit (deps: DestinationDeps, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<CommitAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
  const route = intermediaryRoute(deps, 'offer', ref, caller, vmId)
  if (route !== undefined) {
    const answer = await passAlongRoute(deps, caller, route, 'transfer-commit', body, CommitAnswerSchema, { timeoutMs: deps.limits.transferTimeoutMs })
    faultPoint('intermediary:commit')
    recordPassedOn(deps, caller.sender, vmId, route.partner)
    return answer
  }
  destinationToken(deps, ref, caller.sender, vmId)
  return deps.settling.run(ref, async () => {
    const token = destinationToken(deps, ref, caller.sender, vmId)
    if (token.state === 'spent') return { state: 'committed' }
    if (token.state !== 'received') throw new ProtocolError('transfer-failed', 'the destination could not run the VM', { retryable: false })
    const host = deps.hosts.get(token.hostId, vmId)
    const started = Date.now()
    try {
      await host.confirm(vmId, token.descriptor)
    } catch (err) {
      // The host could not make the files a running VM (define, restore or start failed; it rolled back).
      // Copying again would not help: the files go, and this answer stays the same if asked again.
      await host.abandon(vmId).catch((abandonErr) => deps.log({ event: 'abandon-failed', vm: vmId, error: (abandonErr as Error).message }))
      deps.tokens.setTokenState(token.token, 'cancelled')
      deps.log({ event: 'confirm-failed', vm: vmId, error: (err as Error).message })
      throw new ProtocolError('transfer-failed', 'the destination could not run the VM', { cause: err, retryable: false })
    }
    faultPoint('destination:committing')
    recordArrival(deps, caller, vmId, 'host', token.hostId, token.descriptor)
    deps.tokens.setTokenState(token.token, 'spent')
    deps.live.finished.delete(token.token)
    deps.log({ event: 'transfer-committed', vm: vmId, confirmMs: Date.now() - started })
    faultPoint('destination:committed')
    return { state: 'committed' }
  })
}

/** The Controller's decision is abort: what was received goes; a VM this site already had stays. Idempotent. */
export async function handleTransferAbort (deps: DestinationDeps, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<AbortAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
  const route = intermediaryRoute(deps, 'offer', ref, caller, vmId)
  if (route !== undefined) return await passAlongRoute(deps, caller, route, 'transfer-abort', body, AbortAnswerSchema)
  destinationToken(deps, ref, caller.sender, vmId)
  return deps.settling.run(ref, async () => {
    const token = destinationToken(deps, ref, caller.sender, vmId)
    if (token.state === 'spent') throw new ProtocolError('token-spent', 'the VM was already made this site\'s own')
    if (token.state === 'cancelled') {
      // Asked again: an abandon that failed before (a live arrival's libvirtd down) is tried again.
      if (!deps.transfers.pulls.has(token.token)) await deps.hosts.get(token.hostId, vmId).abandon(vmId)
      return { state: 'aborted' }
    }
    deps.tokens.setTokenState(token.token, 'cancelled')
    await endLiveArrival(deps, token.token)
    // A pull still running drops its files when it ends (receive sees the token cancelled).
    if (!deps.transfers.pulls.has(token.token)) await deps.hosts.get(token.hostId, vmId).abandon(vmId)
    deps.log({ event: 'transfer-aborted', vm: vmId })
    return { state: 'aborted' }
  })
}

/**
 * live-prepare (Controller → Destination, through the chain of delegation): libvirt's Prepare for the
 * live migration the sealed ticket carries; answers Prepare's cookie for the Source's Perform.
 */
export async function handleLivePrepare (deps: DestinationDeps, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<LivePrepared> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const sealed = stringField(body, 'ticket', 65536)
  if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
  const route = intermediaryRoute(deps, 'offer', ref, caller, vmId)
  if (route !== undefined) return await passAlongRoute(deps, caller, route, 'live-prepare', body, LivePreparedSchema, { timeoutMs: deps.limits.transferTimeoutMs })
  const token = usableToken(deps.tokens, ref, 'destination', undefined)
  checkHolder(token, caller.sender, vmId, 'offer')
  if (token.state !== 'open') throw new ProtocolError('transfer-cancelled', `the offer was ${token.state} here`)
  // The offer's own key: the ticket was sealed for it, and the Source's token is bound to its certificate.
  const key = destinationTransferKey(token)
  const ticket = await openTicketWith(sealed, transferSealKeys(key), vmId)
  const host = deps.hosts.get(token.hostId, vmId)
  // Offers reserve nothing: the host may have filled up since it offered.
  if (!deps.live.arriving.has(token.token) && (await host.has(vmId) || vmsThatFit(await host.capacity(), demandOf(token.descriptor)) < 1)) {
    throw new ProtocolError('no-room', 'the offered host has no room left')
  }
  return await prepareLiveArrival(deps, host, token.token, vmId, ticket, key.tls)
}

/** live-finish (Controller → Destination): libvirt's Finish with Perform's cookie, once (see live-arrival.ts); answers dstat. */
export async function handleLiveFinish (deps: DestinationDeps, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<LiveFinished> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const cookie = stringField(body, 'cookie', 65536)
  if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
  const route = intermediaryRoute(deps, 'offer', ref, caller, vmId)
  if (route !== undefined) return await passAlongRoute(deps, caller, route, 'live-finish', body, LiveFinishedSchema, { timeoutMs: deps.limits.transferTimeoutMs })
  destinationToken(deps, ref, caller.sender, vmId)
  // Joins the Finish the Source's in-band "Perform done" may have started already.
  return await joinLiveFinish(deps, ref, vmId, cookie, 'controller')
}

function destinationToken (deps: DestinationDeps, ref: string, sender: string, vmId: string): TokenRecord {
  return heldToken(deps.tokens, ref, 'destination', sender, vmId)
}

/**
 * An Intermediary (or the Controller) learns that the VM it passed along is now its partner's: it
 * records only that neighbour, with the site that asked as upstream. Always a new version, also when
 * the VM left through the same partner: the Source's confirm then never drops this record.
 */
export function recordPassedOn (deps: Pick<DestinationDeps, 'locations' | 'newVersion'>, upstream: string | null, vmId: string, partner: string, descriptor: unknown = null): void {
  const existing = deps.locations.location(vmId)
  deps.locations.setLocation({ vmId, kind: 'partner', target: partner, upstream, descriptor: existing?.descriptor ?? descriptor, version: deps.newVersion() })
}

/**
 * Location unawareness: this site records only where the VM went (a host of ours, or the partner we
 * passed it to). A new version every time, so the verification of the transfer that brought it here
 * never drops this record.
 */
function recordArrival (deps: DestinationDeps, caller: Caller, vmId: string, kind: 'host' | 'partner', target: string, descriptor: unknown): void {
  const existing = deps.locations.location(vmId)
  const upstream = caller.sender === deps.self ? existing?.upstream ?? null : caller.sender
  deps.locations.setLocation({ vmId, kind, target, upstream, descriptor: descriptor ?? existing?.descriptor ?? null, version: deps.newVersion() })
}
