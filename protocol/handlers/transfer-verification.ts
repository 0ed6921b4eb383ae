import { ProtocolError, toProtocolError } from '../errors'
import { wrapDownstream } from '../http/problem'
import { manifestsAgree, parseManifest, type Manifest } from '../proxy/manifest'
import { sourceManifest } from '../proxy/source-manifest'
import type { Caller, SiteContext } from '../site/site-context'
import { objectBody, stringField, vmIdField } from './body-fields'

export interface VerificationAnswer {
  /** verified: the source's manifest equals dstat; the token is spent and the source copy released. */
  state: 'verified' | 'pending'
  status: Manifest
}

/**
 * Transfer verification handler (paper III-C, at the Source; Intermediaries follow the route they
 * recorded at Forced migration). The source proxy's view is its manifest; when dstat equals it, the
 * transfer is done: the token is spent, the VM released here, and this site forgets the VM unless
 * it came back meanwhile.
 */
export async function handleTransferVerification (site: SiteContext, caller: Caller, rawBody: unknown): Promise<VerificationAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const token = stringField(body, 'token', 100)
  const dstat = parseManifest(body.dstat, vmId)
  const route = site.state.route(token)
  if (route !== undefined && route.kind === 'source') {
    if (route.requester !== caller.sender || route.vmId !== vmId) throw new ProtocolError('token-foreign', 'the transfer was prepared for another site or VM')
    let answer: VerificationAnswer
    try {
      answer = await site.send(route.partner, 'transfer-verification', body, caller.sender === site.id ? undefined : caller) as VerificationAnswer
    } catch (err) {
      throw wrapDownstream(toProtocolError(err), 'transfer-verification')
    }
    if (answer.state === 'verified' && route.locationVersion !== null) site.state.dropLocationIf(vmId, route.locationVersion)
    return answer
  }
  const record = site.state.token(token)
  if (record === undefined || record.role !== 'source') throw new ProtocolError('token-unknown', 'the transfer token is not valid here')
  if (record.requester !== caller.sender || record.vmId !== vmId) throw new ProtocolError('token-foreign', 'the transfer was prepared for another site or VM')
  if (record.state === 'cancelled') throw new ProtocolError('transfer-cancelled', 'the transfer was cancelled')
  if (record.state === 'expired') throw new ProtocolError('token-expired', 'the transfer token has expired')
  // A destination reports dstat after reading the source's manifest; one that never did gets it hashed now.
  const manifest = record.manifest ?? await sourceManifest(site.state, record)
  if (!manifestsAgree(dstat, manifest)) return { state: 'pending', status: manifest }
  if (record.state === 'open') {
    if (record.expiresAt < Date.now()) throw new ProtocolError('token-expired', 'the transfer token has expired')
    site.state.setTokenState(token, 'spent')
    await site.host(record.hostId, vmId).release(vmId)
    if (record.locationVersion !== null) site.state.dropLocationIf(vmId, record.locationVersion)
    site.log({ event: 'transfer-verified', vm: vmId })
  }
  return { state: 'verified', status: manifest }
}

/** Cancels a prepared transfer (the Controller gave up): the VM stays at the Source and runs there. */
export async function handleTransferCancel (site: SiteContext, caller: Caller, rawBody: unknown): Promise<{ state: 'cancelled' }> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const token = stringField(body, 'token', 100)
  const route = site.state.route(token)
  if (route !== undefined && route.kind === 'source') {
    if (route.requester !== caller.sender || route.vmId !== vmId) throw new ProtocolError('token-foreign', 'the transfer was prepared for another site or VM')
    try {
      return await site.send(route.partner, 'transfer-cancel', body, caller.sender === site.id ? undefined : caller) as { state: 'cancelled' }
    } catch (err) {
      throw wrapDownstream(toProtocolError(err), 'transfer-cancel')
    }
  }
  const record = site.state.token(token)
  if (record === undefined || record.role !== 'source') throw new ProtocolError('token-unknown', 'the transfer token is not valid here')
  if (record.requester !== caller.sender || record.vmId !== vmId) throw new ProtocolError('token-foreign', 'the transfer was prepared for another site or VM')
  if (record.state === 'spent') throw new ProtocolError('token-spent', 'the transfer was already verified')
  site.state.setTokenState(token, 'cancelled')
  await site.host(record.hostId, vmId).stayHere(vmId)
  site.log({ event: 'transfer-cancelled', vm: vmId })
  return { state: 'cancelled' }
}
