import { connect } from 'node:net'

const PROBE_TIMEOUT_MS = 2000

/** The site's own daemon did not answer the site's CLI: it is not running, or not at its `listen` address. */
export class DaemonUnreachableError extends Error {
  readonly code = 'daemon-unreachable'

  constructor (readonly url: string, reason: string, cause: unknown) {
    super(`the site daemon at ${url} is not running or not reachable (${reason}); start it with \`fedvm site run --config FILE\` or \`systemctl start fedvm-site\``, { cause })
    this.name = 'DaemonUnreachableError'
  }
}

/**
 * Whether anything accepts TCP connections at LISTEN (HOST:PORT): undefined when it does, else why
 * not (ECONNREFUSED, a timeout). Asked after a request failed to tell "the daemon is down" from "the
 * daemon answered that a partner is unreachable", which arrive as the same problem code.
 */
export function probeDaemon (listen: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<string | undefined> {
  const colon = listen.lastIndexOf(':')
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(listen.slice(colon + 1))
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (reason: string | undefined): void => { socket.destroy(); resolve(reason) }
    socket.setTimeout(timeoutMs, () => done(`no connection within ${timeoutMs} ms`))
    socket.once('connect', () => done(undefined))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
  })
}
