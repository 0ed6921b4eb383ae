import { connect } from 'node:tls'

const PROBE_TIMEOUT_MS = 2000

/** The site's own daemon did not answer the site's CLI: it is not running, not at its `listen` address, or not it. */
export class DaemonUnreachableError extends Error {
  readonly code = 'daemon-unreachable'

  constructor (readonly url: string, reason: string, cause: unknown) {
    super(`the site daemon at ${url} is not running or not reachable (${reason}); start it with \`fedvm site run --config FILE\` or \`systemctl start fedvm-site\``, { cause })
    this.name = 'DaemonUnreachableError'
  }
}

/** The site's own daemon is up (it answers TLS with the site's certificate) but gave the CLI no answer. */
export class DaemonNoAnswerError extends Error {
  readonly code = 'daemon-no-answer'

  constructor (readonly url: string, cause: Error) {
    super(`the site daemon at ${url} is running but gave no answer (${cause.message}); it may be overloaded or stuck: see its log (journalctl -u fedvm-site)`, { cause })
    this.name = 'DaemonNoAnswerError'
  }
}

/**
 * Whether the site's daemon answers TLS at LISTEN (HOST:PORT) with the site's own certificate:
 * undefined when it does, else why not (ECONNREFUSED, a timeout, another certificate). Asked after
 * a request failed, to tell "the daemon is down" from "the daemon answered that a partner is
 * unreachable", which arrive as the same problem code.
 */
export function probeDaemon (listen: string, fingerprint: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<string | undefined> {
  const colon = listen.lastIndexOf(':')
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(listen.slice(colon + 1))
  return new Promise((resolve) => {
    // The certificate is self-signed: it is compared with the site's own below instead of validated.
    const socket = connect({ host, port, rejectUnauthorized: false })
    const done = (reason: string | undefined): void => { socket.destroy(); resolve(reason) }
    socket.setTimeout(timeoutMs, () => done(`no TLS connection within ${timeoutMs} ms`))
    socket.once('secureConnect', () => {
      const presented = socket.getPeerCertificate().fingerprint256
      done(presented === fingerprint ? undefined : `a server there presents a certificate other than the site's tls.crt (${presented ?? 'none'}): another program, or a daemon with other keys`)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
  })
}
