import { canonicalJson } from './canonical-json'

/** Domain separation: a fedvm signature can never be mistaken for a signature over anything else. */
const REQUEST_CONTEXT = 'fedvm/1 request\n'
const RESPONSE_CONTEXT = 'fedvm/1 response\n'

/** The bytes a request hop signs: RFC 8785 canonical JSON of everything it vouches for. */
export function requestSigningBytes (value: unknown): Buffer {
  return Buffer.from(REQUEST_CONTEXT + canonicalJson(value), 'utf8')
}

export function responseSigningBytes (value: unknown): Buffer {
  return Buffer.from(RESPONSE_CONTEXT + canonicalJson(value), 'utf8')
}
