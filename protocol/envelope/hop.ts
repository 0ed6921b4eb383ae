/**
 * One hop of a request: who sent it to whom, when, with which message id, how many more forwards the
 * chain allows, and (for a forwarded request) the public key the forwarder verified the previous hop
 * with. The signature covers the operation, the body, every earlier hop (signatures included) and
 * this hop's own fields, so nothing in the chain can be changed or dropped without detection.
 */
export interface Hop {
  from: string
  to: string
  /** Message id: unique per hop; the receiver's replay cache keys on (from, id). */
  id: string
  /** Milliseconds since the Unix epoch. */
  ts: number
  /** How many more times the request may be forwarded. */
  budget: number
  /** The signing key of the previous hop's sender, as the forwarder knows it from its keyring. */
  prevKey?: string
  /** What the receiver should act on: an opaque handle it issued (offer or route). */
  ref?: string
  sig: string
}

export interface SignedRequest {
  op: string
  body: unknown
  hops: Hop[]
}

export type UnsignedHop = Omit<Hop, 'sig'>

/** The value hop number `index` signs. */
export function hopSigningValue (op: string, body: unknown, earlier: Hop[], hop: UnsignedHop): unknown {
  return { op, body, hops: earlier, hop }
}
