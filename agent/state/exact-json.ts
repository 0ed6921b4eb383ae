/**
 * JSON text in which a bigint is written as an exact integer literal: a KPI INTEGER beyond ±2^53
 * keeps every digit in a delivery (JSON itself has no limit on a number's digits; JSON.stringify
 * refuses bigint, and JSON.rawJSON, which would do this, needs Node 21). Anything without a bigint
 * takes JSON.stringify's path unchanged.
 */
export function stringifyExact (value: unknown): string {
  try {
    return JSON.stringify(value)
  } catch (err) {
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err
    return write(value) ?? 'null'
  }
}

/** JSON.stringify's rules (toJSON, undefined and functions left out of objects, null in arrays), plus bigint. */
function write (value: unknown): string | undefined {
  if (typeof value === 'bigint') return value.toString()
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON()
  }
  if (Array.isArray(value)) return `[${value.map((item) => write(item) ?? 'null').join(',')}]`
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  const members: string[] = []
  for (const [key, item] of Object.entries(value)) {
    const text = write(item)
    if (text !== undefined) members.push(`${JSON.stringify(key)}:${text}`)
  }
  return `{${members.join(',')}}`
}
