/** A CSV value as it is stored: INTEGER as bigint, REAL as number, TEXT as string, empty as NULL. */
export type KpiValue = bigint | number | string | null

const INTEGER = /^[+-]?[0-9]+$/
const DECIMAL = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/**
 * Types one CSV field. Integers become bigint so better-sqlite3 binds them as INTEGER (a JS
 * number would be stored as REAL); integers beyond 64 bits are kept as REAL like any large number.
 */
export function typedValue (field: string): KpiValue {
  if (field === '') return null
  if (INTEGER.test(field)) {
    const n = BigInt(field)
    return n >= INT64_MIN && n <= INT64_MAX ? n : Number(field)
  }
  if (DECIMAL.test(field)) return Number(field)
  return field
}
