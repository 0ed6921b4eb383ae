import { ProtocolError, toProtocolError } from '../errors'
import { wrapDownstream } from '../http/problem'
import { demandOf, vmsThatFit } from '../hosts/room'
import { manifestBytes, type Manifest } from '../proxy/manifest'
import { failureCauses } from '../proxy/failure-cause'
import { pullVm, type PullResult } from '../proxy/puller'
import { openTicket } from '../proxy/ticket'
import { usableToken } from '../proxy/tokens'
import type { Caller, SiteContext } from '../site/site-context'
import { objectBody, stringField, vmIdField } from './body-fields'

/** dstat, and what this attempt cost. */
export interface TransferStatus {
  status: Manifest
  bytes: number
  fetchedBytes: number
  reusedBytes: number
}

/**
 * Initiate transfer handler (paper III-C, at the Destination; Intermediaries pass it along their
 * route). The destination proxy pulls from the source proxy named in the sealed ticket. Idempotent:
 * a finished transfer answers its status again without copying, a running one is joined, and a
 * broken one resumes from the chunks already verified on disk.
 */
export async function handleInitiateTransfer (site: SiteContext, caller: Caller, rawBody: unknown, ref: string | undefined): Promise<TransferStatus> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const ticket = stringField(body, 'ticket', 8192)
  if (ref === undefined) throw new ProtocolError('token-unknown', 'the request names no offer')
  const route = site.state.route(ref)
  if (route !== undefined && route.kind === 'offer') {
    if (route.requester !== caller.sender || route.vmId !== vmId) throw new ProtocolError('token-foreign', 'the offer was made to another site or for another VM')
    let answer: TransferStatus
    try {
      answer = await site.send(route.partner, 'initiate-transfer', body, caller.sender === site.id ? undefined : caller, { ref: route.partnerRef, timeoutMs: site.config.limits.transferTimeoutMs }) as TransferStatus
    } catch (err) {
      throw wrapDownstream(toProtocolError(err), 'initiate-transfer')
    }
    recordArrival(site, caller, vmId, 'partner', route.partner, site.state.location(vmId)?.descriptor ?? null)
    return answer
  }
  const token = usableToken(site.state, ref, 'destination', undefined)
  if (token.requester !== caller.sender || token.vmId !== vmId) throw new ProtocolError('token-foreign', 'the offer was made to another site or for another VM')
  if (token.state === 'received' && token.manifest !== null) {
    return { status: token.manifest, bytes: manifestBytes(token.manifest), fetchedBytes: 0, reusedBytes: manifestBytes(token.manifest) }
  }
  let running = site.pulls.get(token.token)
  if (running === undefined) {
    running = pull(site, token.token, token.hostId, vmId, ticket, token.descriptor)
    site.pulls.set(token.token, running)
    running.finally(() => site.pulls.delete(token.token)).catch(() => {})
  }
  const result = await running
  recordArrival(site, caller, vmId, 'host', token.hostId, token.descriptor)
  return { status: result.manifest, bytes: manifestBytes(result.manifest), fetchedBytes: result.fetchedBytes, reusedBytes: result.reusedBytes }
}

/** Pulls started per destination token in this process (for the log: which attempt failed, and why). */
const pullAttempts = new Map<string, number>()

async function pull (site: SiteContext, token: string, hostId: string, vmId: string, sealedTicket: string, descriptor: unknown): Promise<PullResult> {
  const initiated = Date.now()
  const ticket = await openTicket(sealedTicket, site.config.keys, vmId)
  const host = site.host(hostId, vmId)
  // Offers reserve nothing: the host may have filled up since it offered.
  if (!await host.has(vmId) && vmsThatFit(await host.capacity(), demandOf(descriptor)) < 1) throw new ProtocolError('no-room', 'the offered host has no room left')
  const dir = await host.receive(vmId)
  const started = Date.now()
  const attempt = (pullAttempts.get(token) ?? 0) + 1
  pullAttempts.set(token, attempt)
  let lastLog = 0
  let result: PullResult
  try {
    result = await pullVm({
      ticket, dir, clientCert: { key: site.tls.key, cert: site.tls.cert },
      parallel: site.config.limits.parallelRanges, timeoutMs: site.config.limits.requestTimeoutMs,
      onProgress: (p) => {
        const now = Date.now()
        const seconds = Math.max(0.001, (now - started) / 1000)
        const progress = { bytes: p.fetchedBytes + p.reusedBytes, total: p.totalBytes, reused: p.reusedBytes, rateBytesPerSecond: Math.round(p.fetchedBytes / seconds) }
        site.progress.set(vmId, progress)
        if (now - lastLog < 1000 && progress.bytes < p.totalBytes) return
        lastLog = now
        site.log({ event: 'transfer-progress', vm: vmId, ...progress })
      },
    })
  } catch (err) {
    site.progress.delete(vmId)
    const e = toProtocolError(err)
    // Keep partial files only for a retry that can resume from them.
    if (!e.retryable) await host.abandon(vmId)
    // The cause chain names the file, the byte range and the underlying error (ECONNRESET, a timeout…).
    site.log({ event: 'transfer-failed', vm: vmId, attempt, code: e.code, kept: e.retryable, ms: Date.now() - started, causes: failureCauses(err) })
    throw e.code === 'internal' ? new ProtocolError('transfer-failed', 'the transfer did not complete', { cause: err }) : e
  }
  site.progress.delete(vmId)
  const pulledMs = Date.now() - started
  try {
    await host.confirm(vmId, descriptor)
  } catch (err) {
    // The host could not make the files a running VM (define, restore or start failed; it rolled back).
    // Copying again would not help: the files go, and the Controller tries another offer or leaves the VM at the Source.
    await host.abandon(vmId).catch((abandonErr) => site.log({ event: 'abandon-failed', vm: vmId, error: (abandonErr as Error).message }))
    site.log({ event: 'confirm-failed', vm: vmId, error: (err as Error).message })
    throw new ProtocolError('transfer-failed', 'the destination could not run the VM', { cause: err, retryable: false })
  }
  pullAttempts.delete(token)
  site.state.setTokenState(token, 'received', result.manifest)
  site.log({ event: 'transfer-received', vm: vmId, bytes: manifestBytes(result.manifest), fetched: result.fetchedBytes, reused: result.reusedBytes, ms: Date.now() - started, pullMs: pulledMs, confirmMs: Date.now() - started - pulledMs, firstByteMs: result.firstByteAt === undefined ? null : result.firstByteAt - initiated })
  return result
}

/**
 * Location unawareness: this site records only where the VM went (a host of ours, or the partner we
 * passed it to). A new version every time, so the verification of the transfer that brought it here
 * never drops this record.
 */
function recordArrival (site: SiteContext, caller: Caller, vmId: string, kind: 'host' | 'partner', target: string, descriptor: unknown): void {
  const existing = site.state.location(vmId)
  const upstream = caller.sender === site.id ? existing?.upstream ?? null : caller.sender
  site.state.setLocation({ vmId, kind, target, upstream, descriptor: descriptor ?? existing?.descriptor ?? null, version: site.newVersion() })
}
