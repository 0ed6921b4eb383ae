import { ProtocolError } from '../errors'

/**
 * RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, no whitespace, strings
 * and numbers as ECMAScript's JSON.stringify writes them (RFC 8785 §3.2.2 adopts exactly that).
 * The output equals json-canonicalize's `canonicalize` for every JSON value (a property test
 * compares them), but it is several times faster: native JSON.stringify writes the text, a replacer
 * only hands it each object with its keys sorted. json-canonicalize builds a path string per value,
 * which was most of the signing cost of the monitoring relay's batches of thousands of deliveries.
 * Objects whose key order V8 would not keep (array-index keys such as "10", which it always lists
 * first) or that carry a `toJSON` member take the member-by-member path below.
 */
export function canonicalJson (value: unknown): string {
  try {
    return JSON.stringify(value, sortedMembers)
  } catch (err) {
    if (err !== UNUSUAL_OBJECT) throw err
    return memberByMember(value)
  }
}

const UNUSUAL_OBJECT = new Error('an object key order JSON.stringify would not keep')

function sortedMembers (_key: string, value: unknown): unknown {
  // A 64-bit KPI integer beyond ±2^53 (protocol/exact-json.ts): JSON.stringify cannot write it.
  if (typeof value === 'bigint') throw UNUSUAL_OBJECT
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw nonFinite(value)
    return value
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const keys = Object.keys(value)
  let sorted = true
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    const code = key.charCodeAt(0)
    if ((code >= 48 && code <= 57 && isArrayIndex(key)) || key === 'toJSON') throw UNUSUAL_OBJECT
    if (i > 0 && keys[i - 1] > key) sorted = false
  }
  // Already in order (parsed deliveries are): written as it is, no copy.
  if (sorted) return value
  // A null prototype: a "__proto__" member is stored as an own member, not as the prototype.
  const copy = Object.create(null) as Record<string, unknown>
  for (const key of keys.sort()) copy[key] = (value as Record<string, unknown>)[key]
  return copy
}

function isArrayIndex (key: string): boolean {
  return /^(0|[1-9][0-9]{0,9})$/.test(key) && Number(key) < 4294967295
}

/** json-canonicalize's algorithm, without its path bookkeeping (values are JSON data, never circular). */
function memberByMember (value: unknown): string {
  // Its exact integer literal: both ends of a hop read such a literal back as the same bigint.
  if (typeof value === 'bigint') return value.toString()
  if (value === null || typeof value !== 'object' || (value as { toJSON?: unknown }).toJSON != null) {
    if (typeof value === 'number' && !Number.isFinite(value)) throw nonFinite(value)
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map((element: unknown) => (element === undefined ? 'null' : memberByMember(element))).join(',')}]`
  const object = value as Record<string, unknown>
  const members = Object.keys(object).sort().filter((key) => object[key] !== undefined)
  return `{${members.map((key) => `${JSON.stringify(key)}:${memberByMember(object[key])}`).join(',')}}`
}

/**
 * A bad request, not an internal error: JSON.parse reads a number beyond a double's range (1e400)
 * as Infinity, so a received body can carry one that cannot be signed or verified.
 */
function nonFinite (value: number): ProtocolError {
  return new ProtocolError('bad-request', `Non-finite number (${value}) is not permitted in JSON (RFC 8785 §3.2.2.3): a number is out of range`)
}
