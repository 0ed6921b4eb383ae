import { Agent, request as httpRequest, type ClientRequestArgs, type IncomingMessage } from 'node:http'
import { createHash } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { connect, type TLSSocket } from 'node:tls'
import { ProtocolError } from '../errors'
import { readLimited } from './read-body'

export interface PinnedTarget {
  /** https://host:port (no path). */
  url: string
  /** The server certificate's SHA-256 fingerprint (colon hex); nothing is sent before it matches. */
  fingerprint: string
}

export interface PinnedRequestOptions {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: Buffer
  /** Our own certificate, presented to transfer proxies (tokens are bound to it). */
  clientCert?: { key: string, cert: string }
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * Opens a TLS connection, checks the server certificate's fingerprint, and only then sends the
 * HTTP request over that socket. Self-signed certificates are the norm between sites, so the pin
 * replaces CA validation; a mismatch is partner-unreachable (it may be a misconfiguration or an attack).
 */
export async function pinnedRequest (target: PinnedTarget, options: PinnedRequestOptions): Promise<IncomingMessage> {
  const url = new URL(target.url)
  if (url.protocol !== 'https:') throw new ProtocolError('partner-unreachable', `${target.url} is not an https URL`)
  try {
    return await sendOnce(url, target, options)
  } catch (err) {
    // A pooled keep-alive socket the server already closed as idle (its 5 s keepAliveTimeout; the
    // agent's own idle timeout is not applied to these sockets on Node 20, and a busy event loop
    // reads the server's FIN late). The server never read the request: send it once more, on a new socket.
    if (!(err instanceof StaleSocketError)) throw err
    return await sendOnce(url, target, options, true)
  }
}

class StaleSocketError extends Error {}

function sendOnce (url: URL, target: PinnedTarget, options: PinnedRequestOptions, fresh = false): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method: options.method,
      path: options.path,
      host: url.hostname,
      port: Number(url.port || 443),
      headers: { ...options.headers, ...(options.body ? { 'content-length': String(options.body.length) } : {}) },
      agent: pinnedAgent(url, target.fingerprint, options),
      signal: options.signal,
    })
    req.setTimeout(options.timeoutMs, () => req.destroy(new ProtocolError('partner-unreachable', `no answer within ${options.timeoutMs} ms`)))
    req.on('response', resolve)
    req.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code
      if (!fresh && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) reject(new StaleSocketError(code))
      else reject(asUnreachable(err))
    })
    req.end(options.body)
  })
}

/**
 * One keep-alive agent per (server, pin, client certificate): its sockets are handed to HTTP only
 * after the pin checked, and are reused afterwards, so a TLS handshake is paid once per connection,
 * not once per request. Idle sockets are unref'd by the agent and never keep a process alive.
 */
const agents = new Map<string, Agent>()

class PinnedAgent extends Agent {
  constructor (private readonly url: URL, private readonly fingerprint: string, private readonly options: PinnedRequestOptions) {
    // Idle sockets close before the servers' 5 s keep-alive timeout would close them under a new request.
    super({ keepAlive: true, maxSockets: 16, maxFreeSockets: 16, timeout: 4000 })
  }

  override createConnection (_options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    pinnedSocket(this.url, this.fingerprint, this.options).then((socket) => callback?.(null, socket), (err) => callback?.(err, undefined as unknown as Duplex))
    return undefined
  }
}

function pinnedAgent (url: URL, fingerprint: string, options: PinnedRequestOptions): Agent {
  const client = options.clientCert === undefined ? '' : createHash('sha256').update(options.clientCert.cert).digest('hex')
  const key = `${url.origin}|${fingerprint}|${client}`
  let agent = agents.get(key)
  if (agent === undefined) {
    agent = new PinnedAgent(url, fingerprint, options)
    agents.set(key, agent)
  }
  return agent
}

function pinnedSocket (url: URL, fingerprint: string, options: PinnedRequestOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port || 443),
      servername: /^[\d.]+$/.test(url.hostname) ? undefined : url.hostname,
      rejectUnauthorized: false,
      key: options.clientCert?.key,
      cert: options.clientCert?.cert,
    })
    const timer = setTimeout(() => socket.destroy(new ProtocolError('partner-unreachable', `no TLS connection within ${options.timeoutMs} ms`)), options.timeoutMs)
    // Headers and body go out in separate writes: without this, Nagle + delayed ACK stall each request ~40 ms.
    socket.setNoDelay(true)
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      const presented = socket.getPeerCertificate().fingerprint256
      if (presented !== fingerprint) {
        socket.destroy()
        reject(new ProtocolError('partner-unreachable', 'the partner presented a certificate that does not match its pinned fingerprint'))
        return
      }
      resolve(socket)
    })
    socket.once('error', (err) => { clearTimeout(timer); reject(asUnreachable(err)) })
  })
}

function asUnreachable (err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err
  return new ProtocolError('partner-unreachable', 'the partner could not be reached', { cause: err })
}

export async function readResponseBody (res: IncomingMessage, limit: number): Promise<Buffer> {
  return readLimited(res, limit, () => new ProtocolError('bad-response', `the answer exceeds ${limit} bytes`))
}
