import { HypervisorError } from '../../host/errors'
import { normalizeFingerprint } from '../crypto/tls-certificate'
import { ProtocolError } from '../errors'
import type { Log } from '../log'
import { manifestsAgree, parseManifest } from '../proxy/manifest'
import type { ProxyPool } from '../proxy/proxy-pool'
import { sourceManifest } from '../proxy/source-manifest'
import { sealTicket } from '../proxy/ticket'
import type { TokenRecord, TokenStore } from '../proxy/token-record'
import type { SourceTicket } from '../proxy/ticket'
import type { TransferPlan } from '../proxy/transfer-plan'
import { cancellableSourceToken, checkHolder, checkNotExpired, newToken, verifiableSourceToken } from '../proxy/tokens'
import { objectBody, stringField, vmIdField } from './body-fields'
import type { Caller } from './caller'
import type { VmHost } from '../../host/vm-folder/vm-host'
import { hostIdOf, type HostDirectory } from './host-directory'
import { intermediaryRoute, passAlong, passAlongRoute, type PassAlongDeps } from './intermediary'
import { faultPoint } from './fault-point'
import { beginLiveLeaving, confirmLive, performLive, verifyLive, type LiveLeavingDeps } from './live-leaving'
import {
  CancelAnswerSchema, ConfirmAnswerSchema, LivePerformedSchema, LiveStatusSchema, PreparedSourceSchema, VerificationAnswerSchema,
  type CancelAnswer, type ConfirmAnswer, type LivePerformed, type PreparedSource, type VerificationAnswer
} from './partner-answers'
import type { LocationRecord, LocationStore, RouteStore } from './records'
import type { TokenLocks } from './token-locks'

/**
 * The Source (paper III-C): prepares a VM for leaving and hands out its proxy's ⟨uri, token⟩ sealed
 * for the destination (Forced migration, mode "prepare"), then says whether the destination's
 * status equals its own (Transfer verification), or lets the VM stay (cancel). A VM this site
 * delegated further is reached through the route recorded at Forced migration (the Intermediary).
 * From the moment it hands the ticket out until the Controller's decision reaches it, the VM is held
 * here, stopped and not runnable: only the decision (confirm: release it; cancel: run it again) ends
 * that, never a timeout (resolver.ts asks the Controller).
 */
export interface SourceDeps extends PassAlongDeps, LiveLeavingDeps {
  hosts: Pick<HostDirectory, 'get'>
  tokens: Pick<TokenStore, 'token' | 'putToken' | 'setTokenState' | 'setTokenManifest' | 'openSourceTokens'>
  locations: Pick<LocationStore, 'dropLocationIf'>
  routes: Pick<RouteStore, 'route' | 'putRoute'>
  proxies: Pick<ProxyPool, 'choose' | 'url'>
  identity: { tlsFingerprint: string }
  limits: { chunkBytes: number, tokenTtlMs: number, transferTimeoutMs: number }
  settling: TokenLocks
  log: Log
}

/**
 * Forced migration, mode "prepare" (Controller → Source, through the chain of delegation). The token is
 * bound to `destination.tlsFingerprint`, the certificate the Destination made for this transfer (or a
 * relaying Intermediary's own), and the ticket sealed for `destination.sealKey`.
 */
export async function prepareForLeaving (deps: SourceDeps, caller: Caller, vmId: string, record: LocationRecord, body: Record<string, unknown>): Promise<PreparedSource> {
  if (caller.sender !== deps.self && caller.sender !== record.upstream) {
    throw new ProtocolError('not-permitted', 'only the site that delegated the VM here may force it away')
  }
  const destination = objectBody(body.destination)
  const sealKey = stringField(destination, 'sealKey', 100)
  const fingerprint = normalizeFingerprint(stringField(destination, 'tlsFingerprint', 200))
  if (fingerprint === undefined) throw new ProtocolError('bad-request', 'destination.tlsFingerprint must be a SHA-256 fingerprint')
  if (record.kind === 'partner') {
    const answer = await passAlong(deps, caller, record.target, 'forced-migration', body, PreparedSourceSchema)
    deps.routes.putRoute({ ref: answer.token, kind: 'source', vmId, partner: record.target, partnerRef: answer.token, requester: caller.sender, locationVersion: record.version, expiresAt: answer.expiresAt })
    return answer
  }
  const hostId = hostIdOf(record)
  const host = deps.hosts.get(hostId, vmId)
  if (!await host.has(vmId)) throw new ProtocolError('unknown-vm', 'the VM is not where this site recorded it')
  for (const old of deps.tokens.openSourceTokens(vmId)) deps.tokens.setTokenState(old.token, 'cancelled')
  const started = Date.now()
  const token = newToken()
  // A running VM leaves live where both ends can (the destination's offer says whether it can); else cold.
  const goesLive = destination.live === true && await host.leavesLive?.(vmId) === true
  let live: SourceTicket['live']
  // The files are fixed here, once: the source proxy only opens and reads them, and hashes them while sending.
  const plan: TransferPlan = { chunkBytes: deps.limits.chunkBytes, files: [] }
  try {
    if (goesLive) live = await beginLiveOrCold(deps, host, vmId, token)
    if (live === undefined) {
      await host.prepareForLeaving(vmId)
      plan.files = (await host.listFiles(vmId)).map(({ name, size, path }) => ({ name, size, path }))
    }
  } catch (err) {
    // Nothing was handed out yet: the VM runs on here as before.
    await host.stayHere(vmId).catch((stayErr) => deps.log({ event: 'stay-here-failed', vm: vmId, error: (stayErr as Error).message }))
    deps.log({ event: 'prepare-failed', vm: vmId, error: (err as Error).message })
    if (err instanceof HypervisorError && err.code === 'UNSUPPORTED_VM') throw new ProtocolError('unsupported-vm', 'the VM has parts a cold migration cannot carry', { cause: err })
    throw err
  }
  const proxy = deps.proxies.choose()
  const expiresAt = Date.now() + deps.limits.tokenTtlMs
  deps.tokens.putToken({
    token, role: 'source', proxy, vmId, hostId, boundTo: fingerprint, descriptor: record.descriptor, manifest: null, plan,
    state: 'open', expiresAt, locationVersion: record.version, requester: caller.sender,
  })
  const ticket = await sealTicket({ vmId, uri: deps.proxies.url(proxy), fingerprint: deps.identity.tlsFingerprint, token, ...(live === undefined ? {} : { live }) }, sealKey)
  deps.log({ event: 'prepared-for-leaving', vm: vmId, path: live === undefined ? 'cold' : 'live', files: plan.files.length, bytes: plan.files.reduce((s, f) => s + f.size, 0), ms: Date.now() - started })
  faultPoint('source:prepared')
  return { token, ticket, expiresAt, ...(live === undefined ? {} : { live: true }) }
}

/** Begin; a VM with parts a live migration cannot carry (e.g. a disk that is not a file) leaves cold instead. */
async function beginLiveOrCold (deps: SourceDeps, host: VmHost, vmId: string, token: string): Promise<SourceTicket['live']> {
  try {
    return await beginLiveLeaving(deps, host, vmId, token)
  } catch (err) {
    if (!(err instanceof HypervisorError && err.code === 'UNSUPPORTED_VM')) throw err
    deps.log({ event: 'live-unsupported', vm: vmId, reason: err.message })
    return undefined
  }
}

/**
 * Transfer verification: the source proxy's view is its manifest; whether dstat equals it is the
 * answer. Agreeing changes nothing here: the VM stays held until the Controller, having recorded its
 * decision, confirms (transfer-confirm) or cancels.
 */
export async function handleTransferVerification (deps: SourceDeps, caller: Caller, rawBody: unknown): Promise<VerificationAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const token = stringField(body, 'token', 100)
  // A live migration's dstat is what the Destination's libvirtd says arrived; a cold one's, the manifest.
  const liveStatus = LiveStatusSchema.safeParse(body.dstat)
  const dstat = liveStatus.success ? undefined : parseManifest(body.dstat, vmId)
  const route = intermediaryRoute(deps, 'source', token, caller, vmId)
  if (route !== undefined) {
    const answer = await passAlongRoute(deps, caller, route, 'transfer-verification', body, VerificationAnswerSchema)
    if (route.requester !== deps.self) faultPoint('intermediary:verification')
    return answer
  }
  const record = verifiableSourceToken(deps.tokens, token, caller.sender, vmId)
  if (dstat === undefined) {
    const answer = verifyLive(deps, record, liveStatus.data!)
    if (answer.state === 'verified') faultPoint('source:verified')
    return answer
  }
  // A destination reports dstat after reading the source's manifest; one that never did gets it hashed now.
  const manifest = record.manifest ?? await sourceManifest(deps.tokens, record)
  if (!manifestsAgree(dstat, manifest)) return { state: 'pending', status: manifest }
  if (record.state === 'open') {
    checkNotExpired(record)
    deps.log({ event: 'transfer-verified', vm: vmId })
  }
  faultPoint('source:verified')
  return { state: 'verified', status: manifest }
}

/**
 * The Controller's decision was commit and the Destination runs the VM (libvirt's Confirm): the
 * Source releases its copy and forgets the VM unless it came back meanwhile. Idempotent.
 */
export async function handleTransferConfirm (deps: SourceDeps, caller: Caller, rawBody: unknown): Promise<ConfirmAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const token = stringField(body, 'token', 100)
  const route = intermediaryRoute(deps, 'source', token, caller, vmId)
  if (route !== undefined) {
    const answer = await passAlongRoute(deps, caller, route, 'transfer-confirm', body, ConfirmAnswerSchema)
    if (route.requester !== deps.self) faultPoint('intermediary:confirm')
    if (route.locationVersion !== null) deps.locations.dropLocationIf(vmId, route.locationVersion)
    return answer
  }
  sourceTokenOf(deps, token, caller.sender, vmId)
  return deps.settling.run(token, async () => {
    const record = sourceTokenOf(deps, token, caller.sender, vmId)
    if (record.state === 'spent') return { state: 'confirmed' }
    if (record.state !== 'open') throw new ProtocolError('transfer-cancelled', `the transfer was ${record.state} here: the VM runs at the source`)
    faultPoint('source:releasing')
    const started = Date.now()
    // A live migration's Confirm first: libvirt removes the domain the Destination now runs.
    await confirmLive(deps, token, typeof body.cookie === 'string' ? body.cookie : undefined, false)
    const confirmed = Date.now()
    // Released first, spent after: a crash between leaves the token open, and the next confirm releases again.
    await deps.hosts.get(record.hostId, vmId).release(vmId)
    deps.tokens.setTokenState(token, 'spent')
    if (record.locationVersion !== null) deps.locations.dropLocationIf(vmId, record.locationVersion)
    deps.log({ event: 'transfer-released', vm: vmId, confirmMs: confirmed - started, releaseMs: Date.now() - confirmed })
    return { state: 'confirmed' }
  })
}

/** Cancels a prepared transfer (the Controller decided abort): the VM stays at the Source and runs there. */
export async function handleTransferCancel (deps: SourceDeps, caller: Caller, rawBody: unknown): Promise<CancelAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const token = stringField(body, 'token', 100)
  const route = intermediaryRoute(deps, 'source', token, caller, vmId)
  if (route !== undefined) return await passAlongRoute(deps, caller, route, 'transfer-cancel', body, CancelAnswerSchema)
  cancellableSourceToken(deps.tokens, token, caller.sender, vmId)
  return deps.settling.run(token, async () => {
    const record = cancellableSourceToken(deps.tokens, token, caller.sender, vmId)
    // Running again first, cancelled after: a crash between leaves the token open and the next cancel runs it again.
    if (record.state === 'open') {
      await confirmLive(deps, token, undefined, true)
      await deps.hosts.get(record.hostId, vmId).stayHere(vmId)
    }
    if (record.state !== 'cancelled') deps.tokens.setTokenState(token, 'cancelled')
    deps.log({ event: 'transfer-cancelled', vm: vmId })
    return { state: 'cancelled' }
  })
}

/**
 * live-perform (Controller → Source, through the chain of delegation): Perform with the
 * Destination's Prepare cookie; answers Perform's cookie for the Destination's Finish.
 */
export async function handleLivePerform (deps: SourceDeps, caller: Caller, rawBody: unknown): Promise<LivePerformed> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const token = stringField(body, 'token', 100)
  const cookie = stringField(body, 'cookie', 65536)
  const route = intermediaryRoute(deps, 'source', token, caller, vmId)
  if (route !== undefined) return await passAlongRoute(deps, caller, route, 'live-perform', body, LivePerformedSchema, { timeoutMs: deps.limits.transferTimeoutMs })
  const record = sourceTokenOf(deps, token, caller.sender, vmId)
  if (record.state !== 'open') throw new ProtocolError('transfer-cancelled', `the transfer was ${record.state} here`)
  checkNotExpired(record)
  return await performLive(deps, record, cookie)
}

function sourceTokenOf (deps: SourceDeps, token: string, sender: string, vmId: string): TokenRecord {
  const record = deps.tokens.token(token)
  if (record === undefined || record.role !== 'source') throw new ProtocolError('token-unknown', 'the transfer token is not valid here')
  checkHolder(record, sender, vmId, 'transfer')
  return record
}
