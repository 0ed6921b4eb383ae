import type { Server as HttpServer, IncomingMessage } from 'node:http'
import type { Server, Socket } from 'node:net'

/** What every listener of a site allows a connection (the site config's `limits` carry them). */
export interface ConnectionLimits {
  /** From TCP accept to the end of the TLS handshake (TLS listeners). */
  handshakeTimeoutMs: number
  /** From TCP accept (or the handshake's end) to a first request's complete headers; also Node's headersTimeout for later ones. */
  headersTimeoutMs: number
  /** How long a keep-alive connection may wait for its next request. */
  idleTimeoutMs: number
  /** Connections open at once from one peer address; more are closed at accept. */
  maxConnectionsPerPeer: number
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 20_000,
  idleTimeoutMs: 30_000,
  maxConnectionsPerPeer: 256,
}

/**
 * Bounds what an idle or half-open connection can hold of a listener: Node's own timeouts start
 * only once a request began (headersTimeout), are checked every 30 s, or wait 2 minutes (the TLS
 * handshake), so a peer that connects and sends nothing, or part of a handshake or of the first
 * request's headers, is closed here by a timer per connection; the per-peer cap stops one address
 * from opening thousands at once. A request's handling and a long response (a transfer) are not
 * timed: only waiting for a peer that says nothing is. Call it once the server's own 'upgrade' or
 * 'connect' listeners are in place.
 */
export function guardConnections (server: Server, limits: ConnectionLimits, log?: (event: Record<string, unknown>) => void): void {
  const open = new Map<string, number>()
  const waiting = new WeakMap<Socket, NodeJS.Timeout>()
  let refusedSinceLog = 0
  const arm = (socket: Socket, ms: number, what: string): void => {
    clearTimeout(waiting.get(socket))
    waiting.set(socket, setTimeout(() => socket.destroy(new Error(`no ${what} within ${ms} ms`)), ms))
  }
  const disarm = (socket: Socket | undefined): void => {
    if (socket !== undefined) clearTimeout(waiting.get(socket))
  }
  const isTls = typeof (server as { addContext?: unknown }).addContext === 'function'

  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? 'unknown'
    const count = (open.get(peer) ?? 0) + 1
    if (count > limits.maxConnectionsPerPeer) {
      // Logged at most once per burst: a flood must not flood the log too.
      if (refusedSinceLog++ === 0) log?.({ event: 'connection-refused', peer, reason: `more than ${limits.maxConnectionsPerPeer} connections from one address` })
      socket.destroy()
      return
    }
    refusedSinceLog = 0
    open.set(peer, count)
    socket.once('close', () => {
      disarm(socket)
      const left = (open.get(peer) ?? 1) - 1
      if (left === 0) open.delete(peer)
      else open.set(peer, left)
    })
    socket.on('error', () => {}) // a peer's reset; the socket closes and is counted down above
    arm(socket, isTls ? limits.handshakeTimeoutMs : limits.headersTimeoutMs, isTls ? 'TLS handshake' : 'request headers')
  })
  // A TLS socket wraps the accepted one (its _parent): the timer stays on the accepted socket.
  server.on('secureConnection', (tlsSocket: Socket & { _parent?: Socket }) => {
    if (tlsSocket._parent !== undefined) arm(tlsSocket._parent, limits.headersTimeoutMs, 'request headers')
  })
  const started = (req: IncomingMessage): void => {
    const socket = req.socket as Socket & { _parent?: Socket }
    disarm(socket._parent ?? socket)
  }
  server.on('request', started)
  // An upgraded connection (the proxy's parked stream channels) is the server's own from then on. Only
  // a server that handles upgrades gets this listener: one without must keep Node's default for them.
  for (const event of ['upgrade', 'connect']) if (server.listenerCount(event) > 0) server.prependListener(event, started)
  if ('headersTimeout' in server) {
    const http = server as HttpServer
    http.headersTimeout = limits.headersTimeoutMs
    // A listener that already waits less (the transfer proxy's 5 s) keeps its own.
    http.keepAliveTimeout = Math.min(http.keepAliveTimeout > 0 ? http.keepAliveTimeout : Infinity, limits.idleTimeoutMs)
  }
}
