import { z } from 'zod'

/** HOST:PORT where a server listens: a name or IPv4 address, or an IPv6 address in brackets. */
const LISTEN = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/

/** The host (brackets removed) and port of a listen address; undefined when it is not HOST:PORT with a port up to 65535. */
export function parseListenAddress (text: string): { host: string, port: number } | undefined {
  const match = LISTEN.exec(text)
  if (match === null || Number(match[2]) > 65535) return undefined
  return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) }
}

export const listenSchema = z.string().refine((text) => parseListenAddress(text) !== undefined, 'must be HOST:PORT (port 0 to 65535)')
