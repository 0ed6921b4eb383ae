import { HypervisorError } from '../../host/errors'
import { normalizeFingerprint } from '../crypto/tls-certificate'
import { ProtocolError, toProtocolError } from '../errors'
import { wrapDownstream } from '../http/problem'
import { sealTicket } from '../proxy/ticket'
import { newToken } from '../proxy/tokens'
import type { TransferPlan } from '../proxy/transfer-plan'
import type { LocationRecord } from '../state/site-state'
import type { Caller, SiteContext } from '../site/site-context'
import { objectBody, stringField, vmIdField } from './body-fields'

export interface PreparedSource {
  /** stok: opaque; the Controller passes it back in Transfer verification. */
  token: string
  /** ⟨suri, stok⟩ sealed for the destination site. */
  ticket: string
  expiresAt: number
}

/**
 * Forced migration. mode "prepare" (Controller → Source, through the chain of delegation): the VM is
 * prepared for leaving and the source proxy's ⟨uri, token⟩ comes back, sealed for the destination.
 * mode "away" (Source → the site that delegated the VM to it): that site performs the migration as
 * Controller or escalates to its own upstream; it is never ignored and the answer is signed.
 */
export async function handleForcedMigration (site: SiteContext, caller: Caller, rawBody: unknown, runController: ControllerRunner): Promise<unknown> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const record = site.state.location(vmId)
  if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
  if (body.mode === 'prepare') return prepare(site, caller, vmId, record, body)
  if (body.mode === 'away') return away(site, caller, vmId, record, runController)
  throw new ProtocolError('bad-request', 'mode must be "prepare" or "away"')
}

export type ControllerRunner = (vmId: string, exclude: string[]) => Promise<unknown>

async function prepare (site: SiteContext, caller: Caller, vmId: string, record: LocationRecord, body: Record<string, unknown>): Promise<PreparedSource> {
  if (caller.sender !== site.id && caller.sender !== record.upstream) {
    throw new ProtocolError('not-permitted', 'only the site that delegated the VM here may force it away')
  }
  const destination = objectBody(body.destination)
  const sealKey = stringField(destination, 'sealKey', 100)
  const fingerprint = normalizeFingerprint(stringField(destination, 'tlsFingerprint', 200))
  if (fingerprint === undefined) throw new ProtocolError('bad-request', 'destination.tlsFingerprint must be a SHA-256 fingerprint')
  if (record.kind === 'partner') {
    let answer: PreparedSource
    try {
      answer = parsePrepared(await site.send(record.target, 'forced-migration', body, caller.sender === site.id ? undefined : caller))
    } catch (err) {
      throw wrapDownstream(toProtocolError(err), 'forced-migration')
    }
    site.state.putRoute({ ref: answer.token, kind: 'source', vmId, partner: record.target, partnerRef: answer.token, requester: caller.sender, locationVersion: record.version, expiresAt: answer.expiresAt })
    return answer
  }
  const hostId = record.kind === 'intake' ? `intake:${record.target}` : record.target
  const host = site.host(hostId, vmId)
  if (!await host.has(vmId)) throw new ProtocolError('unknown-vm', 'the VM is not where this site recorded it')
  for (const old of site.state.openSourceTokens(vmId)) site.state.setTokenState(old.token, 'cancelled')
  const started = Date.now()
  // The files are fixed here, once: the source proxy only opens and reads them, and hashes them while sending.
  const plan: TransferPlan = { chunkBytes: site.config.limits.chunkBytes, files: [] }
  try {
    await host.prepareForLeaving(vmId)
    plan.files = (await host.listFiles(vmId)).map(({ name, size, path }) => ({ name, size, path }))
  } catch (err) {
    // Nothing was handed out yet: the VM runs on here as before.
    await host.stayHere(vmId).catch((stayErr) => site.log({ event: 'stay-here-failed', vm: vmId, error: (stayErr as Error).message }))
    site.log({ event: 'prepare-failed', vm: vmId, error: (err as Error).message })
    if (err instanceof HypervisorError && err.code === 'UNSUPPORTED_VM') throw new ProtocolError('unsupported-vm', 'the VM has parts a cold migration cannot carry', { cause: err })
    throw err
  }
  const token = newToken()
  const proxy = site.chooseProxy()
  const expiresAt = Date.now() + site.config.limits.tokenTtlMs
  site.state.putToken({
    token, role: 'source', proxy, vmId, hostId, boundTo: fingerprint, descriptor: record.descriptor, manifest: null, plan,
    state: 'open', expiresAt, locationVersion: record.version, requester: caller.sender,
  })
  const ticket = await sealTicket({ vmId, uri: site.proxyUrls[proxy], fingerprint: site.tls.fingerprint, token }, sealKey)
  site.log({ event: 'prepared-for-leaving', vm: vmId, files: plan.files.length, bytes: plan.files.reduce((s, f) => s + f.size, 0), ms: Date.now() - started })
  return { token, ticket, expiresAt }
}

async function away (site: SiteContext, caller: Caller, vmId: string, record: LocationRecord, runController: ControllerRunner): Promise<unknown> {
  if (caller.sender !== site.id && !(record.kind === 'partner' && record.target === caller.sender)) {
    throw new ProtocolError('not-permitted', 'only the site holding the VM may ask to move it away')
  }
  try {
    const result = await runController(vmId, caller.sender === site.id ? [] : [caller.sender])
    return { outcome: 'performed', by: site.id, result }
  } catch (err) {
    const reason = toProtocolError(err)
    site.log({ event: 'forced-migration-not-performed', vm: vmId, code: reason.code })
    if (record.upstream === null) {
      throw new ProtocolError('forced-migration-failed', `no destination could take the VM and there is no site to escalate to (${reason.code})`, { cause: err })
    }
    let answer: unknown
    try {
      answer = await site.send(record.upstream, 'forced-migration', { vmId, mode: 'away' }, undefined)
    } catch (upErr) {
      throw wrapDownstream(toProtocolError(upErr), 'forced-migration')
    }
    return { outcome: 'escalated', to: record.upstream, answer }
  }
}

function parsePrepared (value: unknown): PreparedSource {
  const v = (value ?? {}) as Record<string, unknown>
  if (typeof v.token !== 'string' || typeof v.ticket !== 'string' || !Number.isSafeInteger(v.expiresAt)) {
    throw new ProtocolError('bad-response', 'the forced-migration answer is malformed')
  }
  return { token: v.token, ticket: v.ticket, expiresAt: v.expiresAt as number }
}
