import { createHash } from 'node:crypto'
import { sign, verify } from '../crypto/signing-keys'
import { ProtocolError } from '../errors'
import { responseSigningBytes } from './canonical'
import type { Signer } from './sign-request'

/** The header that carries an answer's signature; the body itself stays a plain result or problem document. */
export const RESPONSE_SIGNATURE_HEADER = 'fedvm-signature'

interface ResponseSignature {
  from: string
  to: string
  /** The message id of the request hop this answers: an answer cannot be replayed onto another request. */
  replyTo: string
  ts: number
  status: number
  bodySha256: string
}

export async function signResponse (signer: Signer, to: string, replyTo: string, status: number, body: Buffer): Promise<string> {
  const fields: ResponseSignature = { from: signer.id, to, replyTo, ts: Date.now(), status, bodySha256: sha256(body) }
  const sig = Buffer.from(await sign(responseSigningBytes(fields), signer.secretKey)).toString('base64')
  return Buffer.from(JSON.stringify({ ...fields, sig })).toString('base64url')
}

export interface ExpectedResponse {
  from: string
  fromKey: Uint8Array
  to: string
  replyTo: string
  windowMs: number
}

/** Throws bad-response unless the answer is signed by the partner asked, for this very request. */
export async function verifyResponse (header: string | undefined, status: number, body: Buffer, expected: ExpectedResponse): Promise<void> {
  if (header === undefined) throw new ProtocolError('bad-response', `${expected.from} answered without a signature`)
  let parsed: ResponseSignature & { sig: string }
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))
  } catch (err) {
    throw new ProtocolError('bad-response', `${expected.from} answered with a malformed signature`, { cause: err })
  }
  const { sig, ...fields } = parsed
  const ok = fields.from === expected.from && fields.to === expected.to && fields.replyTo === expected.replyTo &&
    fields.status === status && fields.bodySha256 === sha256(body) && typeof fields.ts === 'number' &&
    typeof sig === 'string' && await verify(responseSigningBytes(fields), Buffer.from(sig, 'base64'), expected.fromKey)
  if (!ok) throw new ProtocolError('bad-response', `the answer from ${expected.from} is not signed for this request`)
  // A genuine answer to this very request (replyTo binds it) dated outside the window: the two clocks
  // differ, which the user must hear as such, not as a partner that answered nonsense.
  const skewMs = fields.ts - Date.now()
  if (Math.abs(skewMs) > expected.windowMs) {
    throw new ProtocolError('stale-timestamp', `${expected.from}'s clock is ${Math.round(Math.abs(skewMs) / 1000)} s ${skewMs < 0 ? 'behind' : 'ahead of'} this site's; at most ${expected.windowMs / 1000} s is accepted`)
  }
}

function sha256 (body: Buffer): string {
  return createHash('sha256').update(body).digest('base64')
}
