import { verify } from '../crypto/signing-keys'
import { decodeKey } from '../crypto/key-files'
import { ProtocolError } from '../errors'
import { requestSigningBytes } from './canonical'
import { hopSigningValue, type Hop, type SignedRequest, type UnsignedHop } from './hop'
import type { Keyring } from './keyring'
import type { ReplayCache } from './replay-cache'
import { isSiteId } from '../site-id'

export interface VerifyOptions {
  me: string
  keyring: Keyring
  replay: ReplayCache
  /** Accepted clock difference for the last hop, either way. */
  windowMs: number
  /** How old the origin hop of a forwarded chain may be. */
  chainWindowMs: number
  maxHops: number
  now?: number
}

/** The verified request and who sent it (the last hop's sender). */
export interface VerifiedRequest {
  request: SignedRequest
  sender: string
  senderKey: string
  origin: string
  last: Hop
}

const MESSAGE_ID = /^[A-Za-z0-9-]{8,64}$/

/**
 * Checks, in this order and before anything else is done with the request: shape, addressee, sender,
 * signature, timestamp window, replay; then every earlier hop of the delegation chain and the hop budget.
 */
export async function verifyRequest (value: unknown, options: VerifyOptions): Promise<VerifiedRequest> {
  const request = parseSignedRequest(value, options.maxHops)
  const now = options.now ?? Date.now()
  const last = request.hops[request.hops.length - 1]
  if (last.to !== options.me) throw new ProtocolError('misdirected', `the request is addressed to ${last.to}`)
  const senderKey = options.keyring.get(last.from)
  if (senderKey === undefined) throw new ProtocolError('unknown-sender', `${last.from} is not a partner of this site`)
  if (!await hopVerifies(request, request.hops.length - 1, senderKey)) throw new ProtocolError('bad-signature', 'the request signature does not verify')
  if (Math.abs(now - last.ts) > options.windowMs) throw new ProtocolError('stale-timestamp', `the request timestamp is more than ${options.windowMs} ms from this site's clock`)
  await verifyChain(request, options, now)
  if (options.replay.seenBefore(last.from, last.id, now + 2 * options.windowMs)) {
    throw new ProtocolError('replayed-message', 'this message id was already received')
  }
  return { request, sender: last.from, senderKey: Buffer.from(senderKey).toString('base64'), origin: request.hops[0].from, last }
}

/** Earlier hops are checked with the key the next hop's signer attests (and that this site knows, if it does). */
async function verifyChain (request: SignedRequest, options: VerifyOptions, now: number): Promise<void> {
  const hops = request.hops
  if (hops.some((hop, index) => index < hops.length - 1 && hop.from === options.me)) {
    throw new ProtocolError('loop-detected', 'the request already passed this site')
  }
  if (hops[0].prevKey !== undefined) throw new ProtocolError('tampered-hop-chain', 'the origin hop names a previous key')
  if (now - hops[0].ts > options.chainWindowMs) throw new ProtocolError('stale-timestamp', 'the origin of the delegation chain is too old')
  for (let index = hops.length - 2; index >= 0; index--) {
    const hop = hops[index]
    const next = hops[index + 1]
    if (next.prevKey === undefined) throw new ProtocolError('tampered-hop-chain', `hop ${index + 1} does not attest the previous sender's key`)
    let key: Uint8Array
    try {
      key = decodeKey('prevKey', next.prevKey)
    } catch (err) {
      throw new ProtocolError('tampered-hop-chain', `hop ${index + 1} attests a malformed key`, { cause: err })
    }
    const known = options.keyring.get(hop.from)
    if (known !== undefined && Buffer.compare(Buffer.from(known), Buffer.from(key)) !== 0) {
      throw new ProtocolError('tampered-hop-chain', `hop ${index + 1} attests a key for ${hop.from} that is not its key`)
    }
    if (hop.to !== next.from) throw new ProtocolError('tampered-hop-chain', `hop ${index} is addressed to ${hop.to}, not to ${next.from}`)
    if (next.budget >= hop.budget) throw new ProtocolError('tampered-hop-chain', `hop ${index + 1} does not decrease the hop budget`)
    if (hop.ts > next.ts + options.windowMs) throw new ProtocolError('tampered-hop-chain', `hop ${index} is later than the hop that forwarded it`)
    if (!await hopVerifies(request, index, key)) throw new ProtocolError('tampered-hop-chain', `the signature of hop ${index} does not verify`)
  }
  if (hops[hops.length - 1].budget < 0) throw new ProtocolError('hop-budget-exhausted', 'the hop budget is exhausted')
}

async function hopVerifies (request: SignedRequest, index: number, key: Uint8Array): Promise<boolean> {
  const { sig, ...unsigned } = request.hops[index]
  const bytes = requestSigningBytes(hopSigningValue(request.op, request.body, request.hops.slice(0, index), unsigned as UnsignedHop))
  return verify(bytes, Buffer.from(sig, 'base64'), key)
}

/** Shape only: anything that is not a well-formed signed request is a bad request. */
export function parseSignedRequest (value: unknown, maxHops: number): SignedRequest {
  if (typeof value !== 'object' || value === null) throw new ProtocolError('bad-request', 'the request is not a JSON object')
  const { op, body, hops } = value as Record<string, unknown>
  if (typeof op !== 'string') throw new ProtocolError('bad-request', 'op must be a string')
  if (body === undefined) throw new ProtocolError('bad-request', 'body is missing')
  if (!Array.isArray(hops) || hops.length === 0) throw new ProtocolError('bad-signature', 'the request carries no signed hop')
  if (hops.length > maxHops) throw new ProtocolError('hop-budget-exhausted', `the request has ${hops.length} hops; at most ${maxHops} are accepted`)
  hops.forEach((hop, index) => checkHopShape(hop, index))
  return { op, body, hops: hops as Hop[] }
}

function checkHopShape (hop: unknown, index: number): void {
  const where = `hops[${index}]`
  if (typeof hop !== 'object' || hop === null) throw new ProtocolError('bad-request', `${where} is not an object`)
  const h = hop as Record<string, unknown>
  const allowed = new Set(['from', 'to', 'id', 'ts', 'budget', 'prevKey', 'ref', 'sig'])
  for (const key of Object.keys(h)) if (!allowed.has(key)) throw new ProtocolError('bad-request', `${where}.${key} is not a hop field`)
  if (typeof h.from !== 'string' || !isSiteId(h.from)) throw new ProtocolError('bad-request', `${where}.from must be a site id`)
  if (typeof h.to !== 'string' || !isSiteId(h.to)) throw new ProtocolError('bad-request', `${where}.to must be a site id`)
  if (typeof h.id !== 'string' || !MESSAGE_ID.test(h.id)) throw new ProtocolError('bad-request', `${where}.id must be a message id`)
  if (!Number.isSafeInteger(h.ts)) throw new ProtocolError('bad-request', `${where}.ts must be an integer (ms)`)
  if (!Number.isSafeInteger(h.budget)) throw new ProtocolError('bad-request', `${where}.budget must be an integer`)
  if (h.prevKey !== undefined && typeof h.prevKey !== 'string') throw new ProtocolError('bad-request', `${where}.prevKey must be a string`)
  if (h.ref !== undefined && (typeof h.ref !== 'string' || h.ref.length > 200)) throw new ProtocolError('bad-request', `${where}.ref must be a short string`)
  if (typeof h.sig !== 'string') throw new ProtocolError('bad-signature', `${where}.sig is missing`)
}
