import { parse as parseLossless } from 'lossless-json'

/**
 * JSON in which a 64-bit KPI integer beyond ±2^53 keeps every digit: JSON itself has no limit on a
 * number's digits, but JSON.parse reads every number as a double and JSON.stringify refuses bigint
 * (JSON.rawJSON and the reviver's source text, which would do this natively, need Node 21+). Such an
 * integer is a bigint in memory and an integer literal in the text; every other number stays a
 * double, so a bigint means "not exact as a number" and each value has one form (canonical JSON and
 * signatures agree on both sides of a hop).
 */

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)

/** True for a bigint that a JSON number would round: outside ±(2^53 - 1). */
export function isBeyondDouble (value: bigint): boolean {
  return value > MAX_SAFE || value < MIN_SAFE
}

/** True for a bigint a 64-bit signed integer holds (SQLite INTEGER, a KPI value). */
export function isInt64 (value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX
}

/**
 * JSON.parse, except that an integer literal beyond ±2^53 comes back as an exact bigint. Text
 * without a run of 16 digits (2^53 has 16) cannot hold one and takes JSON.parse's native path: the
 * JavaScript parser is several times slower and only the rare body with such an integer pays it.
 * Errors are JSON.parse's SyntaxError.
 */
export function parseExact (text: string): unknown {
  if (!LONG_DIGIT_RUN.test(text)) return JSON.parse(text)
  try {
    return parseLossless(text, null, exactNumber)
  } catch (err) {
    throw new SyntaxError((err as Error).message, { cause: err })
  }
}

const LONG_DIGIT_RUN = /[0-9]{16}/
const INTEGER = /^-?[0-9]+$/

/**
 * An integer literal within 64 bits but beyond ±2^53 is a bigint. One beyond 64 bits can only be a
 * double (JSON.stringify writes an integral double below 1e21 as digits: 1e20 is
 * "100000000000000000000"), so it stays one. A double between 2^53 and 2^63 (JSON.stringify writes
 * its shortest digits) becomes the bigint of those digits: written again, the text is the same.
 */
function exactNumber (text: string): number | bigint {
  if (!INTEGER.test(text)) return Number(text)
  const value = BigInt(text)
  return isBeyondDouble(value) && isInt64(value) ? value : Number(text)
}

/**
 * JSON.stringify(value, null, indent), plus bigint written as an exact integer literal. Anything
 * without a bigint takes JSON.stringify's native path unchanged.
 */
export function stringifyExact (value: unknown, indent = 0): string {
  try {
    return JSON.stringify(value, null, indent)
  } catch (err) {
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err
    return write(value, ' '.repeat(indent), '\n') ?? 'null'
  }
}

/** JSON.stringify's rules (toJSON, undefined and functions left out of objects, null in arrays, the indent), plus bigint. */
function write (value: unknown, gap: string, newline: string): string | undefined {
  if (typeof value === 'bigint') return value.toString()
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON()
  }
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  const inner = gap === '' ? '' : newline + gap
  const [open, separator, close] = gap === '' ? ['', ',', ''] : [inner, `,${inner}`, newline]
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    return `[${open}${value.map((item) => write(item, gap, inner) ?? 'null').join(separator)}${close}]`
  }
  const members: string[] = []
  for (const [key, item] of Object.entries(value)) {
    const text = write(item, gap, inner)
    if (text !== undefined) members.push(`${JSON.stringify(key)}:${gap === '' ? '' : ' '}${text}`)
  }
  if (members.length === 0) return '{}'
  return `{${open}${members.join(separator)}${close}}`
}
