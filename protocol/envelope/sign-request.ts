import { randomUUID } from 'node:crypto'
import { sign } from '../crypto/signing-keys'
import { ProtocolError } from '../errors'
import { requestSigningBytes } from './canonical'
import { hopSigningValue, type Hop, type SignedRequest, type UnsignedHop } from './hop'

export interface Signer {
  id: string
  secretKey: Uint8Array
}

/** A new request from this site (it is the origin of the chain). */
export async function signNewRequest (signer: Signer, to: string, op: string, body: unknown, budget: number, ref?: string): Promise<SignedRequest> {
  const hop = await signHop(signer, op, body, [], { from: signer.id, to, id: randomUUID(), ts: Date.now(), budget, ref })
  return { op, body, hops: [hop] }
}

/**
 * Forwards a verified request to the next site: the body is unchanged; a new hop is added, signed by
 * this site, attesting the key it verified the previous hop with. Refused when the budget is spent.
 */
export async function signForward (signer: Signer, request: SignedRequest, to: string, previousSenderKey: string, ref?: string): Promise<SignedRequest> {
  const last = request.hops[request.hops.length - 1]
  if (last.budget < 1) throw new ProtocolError('hop-budget-exhausted', 'the request may not be forwarded any further')
  const hop = await signHop(signer, request.op, request.body, request.hops, {
    from: signer.id, to, id: randomUUID(), ts: Date.now(), budget: last.budget - 1, prevKey: previousSenderKey, ref,
  })
  return { op: request.op, body: request.body, hops: [...request.hops, hop] }
}

async function signHop (signer: Signer, op: string, body: unknown, earlier: Hop[], fields: UnsignedHop): Promise<Hop> {
  const unsigned: UnsignedHop = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as UnsignedHop
  const signature = await sign(requestSigningBytes(hopSigningValue(op, body, earlier, unsigned)), signer.secretKey)
  return { ...unsigned, sig: Buffer.from(signature).toString('base64') }
}
