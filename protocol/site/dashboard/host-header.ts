import { isIP } from 'node:net'

/**
 * Whether a request's Host names this machine by an address or as "localhost". A page on loopback
 * without basic auth is otherwise open to DNS rebinding: a web page the operator visits points its
 * own name at 127.0.0.1 and reads the JSON as same-origin. Such a request carries that name in Host.
 */
export function namesLoopbackDirectly (host: string | undefined): boolean {
  if (host === undefined) return false
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(:\d{1,5})?$/.exec(host)
  if (match === null) return false
  const name = match[1].replace(/^\[|\]$/g, '')
  return name.toLowerCase() === 'localhost' || isIP(name) !== 0
}
