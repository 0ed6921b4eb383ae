import { ProtocolError } from '../errors'

const MAX_DEPTH = 100

/**
 * Refuses a parsed request body that has a member named __proto__ at any depth (JSON.parse makes it
 * an own member, which a later Object.assign or property copy turns into the copy's prototype): a bad-request naming the member's path (`body.descriptor.__proto__`).
 * Bodies nested deeper than the protocol ever sends are refused too.
 */
export function refusePrototypeKeys (value: unknown, path = 'body'): void {
  walk(value, path, 0)
}

function walk (value: unknown, path: string, depth: number): void {
  if (typeof value !== 'object' || value === null) return
  if (depth > MAX_DEPTH) throw new ProtocolError('bad-request', `${path} is nested more than ${MAX_DEPTH} levels deep`)
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1))
    return
  }
  for (const key of Object.keys(value)) {
    if (key === '__proto__') throw new ProtocolError('bad-request', `${path}.__proto__: a member named __proto__ is not accepted`)
    walk((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1)
  }
}
