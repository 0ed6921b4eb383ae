import type { Demand } from '../../host/vm-folder/vm-host'
import { ProtocolError, toProtocolError } from '../errors'
import type { Log } from '../log'
import { failureCauses } from '../proxy/failure-cause'
import { manifestBytes } from '../proxy/manifest'
import type { ProxyPool } from '../proxy/proxy-pool'
import { pullVm, type PullResult } from '../proxy/puller'
import { openTicket } from '../proxy/ticket'
import type { TokenStore } from '../proxy/token-record'
import { checkHolder, newToken, usableToken } from '../proxy/tokens'
import { objectBody, stringField, stringListField, vmIdField, descriptorField } from './body-fields'
import type { Caller } from './caller'
import type { HostDirectory } from './host-directory'
import type { IncomingTransfers } from './incoming-transfers'
import { askPartners, exposeOffers, mayForward, passAlong, type DelegationDeps } from './intermediary'
import { TransferStatusSchema, type Offer, type TransferStatus } from './partner-answers'
import type { LocationStore, RouteStore } from './records'
import { demandOf, vmsThatFit } from './room'

/**
 * The Destination (paper III-C): offers room for a VM on its hosts (Migration request), and when the
 * Controller picks an offer, pulls the VM's files from the Source's proxy and makes them a VM here
 * (Initiate transfer). Requests for offers it only passed along go to the Intermediary.
 */
export interface DestinationDeps extends DelegationDeps {
  hosts: HostDirectory
  tokens: Pick<TokenStore, 'token' | 'putToken' | 'setTokenState'>
  locations: Pick<LocationStore, 'location' | 'setLocation'>
  routes: Pick<RouteStore, 'route' | 'putRoute'>
  proxies: Pick<ProxyPool, 'choose'>
  /** What offers carry: this site's sealing key and TLS fingerprint; and its keys to open tickets and pull with. */
  identity: { sealPublicKey: string, tlsFingerprint: string, tls: { key: string, cert: string }, keysDir: string }
  policy: DelegationDeps['policy'] & { acceptFrom: string[] }
  limits: DelegationDeps['limits'] & { transferTimeoutMs: number, parallelRanges: number, requestTimeoutMs: number }
  transfers: IncomingTransfers
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

/** One offer per host that has room for the VM's demand (VM slots, memory, vCPUs); a host that cannot say is skipped. */
async function localOffers (deps: DestinationDeps, caller: Caller, vmId: string, descriptor: unknown, demand: Demand): Promise<Offer[]> {
  const offers: Offer[] = []
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
    const token = newToken()
    deps.tokens.putToken({
      token, role: 'destination', proxy: deps.proxies.choose(), vmId, hostId: host.id, boundTo: caller.sender, descriptor,
      manifest: null, state: 'open', expiresAt: Date.now() + deps.limits.tokenTtlMs, locationVersion: null, requester: caller.sender,
    })
    offers.push({ ref: token, sealKey: deps.identity.sealPublicKey, tlsFingerprint: deps.identity.tlsFingerprint, depth: 0, free })
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
  const route = deps.routes.route(ref)
  if (route !== undefined && route.kind === 'offer') {
    checkHolder(route, caller.sender, vmId, 'offer')
    const answer = await passAlong(deps, caller, route.partner, 'initiate-transfer', body, TransferStatusSchema, { ref: route.partnerRef, timeoutMs: deps.limits.transferTimeoutMs })
    recordArrival(deps, caller, vmId, 'partner', route.partner, deps.locations.location(vmId)?.descriptor ?? null)
    return answer
  }
  const token = usableToken(deps.tokens, ref, 'destination', undefined)
  checkHolder(token, caller.sender, vmId, 'offer')
  if (token.state === 'received' && token.manifest !== null) {
    return { status: token.manifest, bytes: manifestBytes(token.manifest), fetchedBytes: 0, reusedBytes: manifestBytes(token.manifest) }
  }
  let running = deps.transfers.pulls.get(token.token)
  if (running === undefined) {
    running = receive(deps, token.token, token.hostId, vmId, ticket, token.descriptor)
    deps.transfers.pulls.set(token.token, running)
    running.finally(() => deps.transfers.pulls.delete(token.token)).catch(() => {})
  }
  const result = await running
  recordArrival(deps, caller, vmId, 'host', token.hostId, token.descriptor)
  return { status: result.manifest, bytes: manifestBytes(result.manifest), fetchedBytes: result.fetchedBytes, reusedBytes: result.reusedBytes }
}

async function receive (deps: DestinationDeps, token: string, hostId: string, vmId: string, sealedTicket: string, descriptor: unknown): Promise<PullResult> {
  const { transfers, log } = deps
  const initiated = Date.now()
  const ticket = await openTicket(sealedTicket, deps.identity.keysDir, vmId)
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
      ticket, dir, clientCert: deps.identity.tls,
      parallel: deps.limits.parallelRanges, timeoutMs: deps.limits.requestTimeoutMs,
      onProgress: (p) => {
        const now = Date.now()
        const seconds = Math.max(0.001, (now - started) / 1000)
        const progress = { bytes: p.fetchedBytes + p.reusedBytes, total: p.totalBytes, reused: p.reusedBytes, rateBytesPerSecond: Math.round(p.fetchedBytes / seconds) }
        transfers.progress.set(vmId, progress)
        if (now - lastLog < 1000 && progress.bytes < p.totalBytes) return
        lastLog = now
        log({ event: 'transfer-progress', vm: vmId, ...progress })
      },
    })
  } catch (err) {
    transfers.progress.delete(vmId)
    const e = toProtocolError(err)
    // Keep partial files only for a retry that can resume from them.
    if (!e.retryable) await host.abandon(vmId)
    // The cause chain names the file, the byte range and the underlying error (ECONNRESET, a timeout…).
    log({ event: 'transfer-failed', vm: vmId, attempt, code: e.code, kept: e.retryable, ms: Date.now() - started, causes: failureCauses(err) })
    throw e.code === 'internal' ? new ProtocolError('transfer-failed', 'the transfer did not complete', { cause: err }) : e
  }
  transfers.progress.delete(vmId)
  const pulledMs = Date.now() - started
  try {
    await host.confirm(vmId, descriptor)
  } catch (err) {
    // The host could not make the files a running VM (define, restore or start failed; it rolled back).
    // Copying again would not help: the files go, and the Controller tries another offer or leaves the VM at the Source.
    await host.abandon(vmId).catch((abandonErr) => log({ event: 'abandon-failed', vm: vmId, error: (abandonErr as Error).message }))
    log({ event: 'confirm-failed', vm: vmId, error: (err as Error).message })
    throw new ProtocolError('transfer-failed', 'the destination could not run the VM', { cause: err, retryable: false })
  }
  transfers.attempts.delete(token)
  deps.tokens.setTokenState(token, 'received', result.manifest)
  log({ event: 'transfer-received', vm: vmId, bytes: manifestBytes(result.manifest), fetched: result.fetchedBytes, reused: result.reusedBytes, ms: Date.now() - started, pullMs: pulledMs, confirmMs: Date.now() - started - pulledMs, firstByteMs: result.firstByteAt === undefined ? null : result.firstByteAt - initiated })
  return result
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
