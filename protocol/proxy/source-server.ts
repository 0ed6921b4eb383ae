import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { DEFAULT_CIPHERS, type TLSSocket } from 'node:tls'
import { ProtocolError, toProtocolError } from '../errors'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../http/problem'
import type { TokenRecord, TokenStore } from './token-record'
import type { TlsIdentity } from '../crypto/tls-certificate'
import { chunkHasher } from './chunk-hasher'
import { SourceTransfer } from './source-transfer'
import type { Throttle } from './throttle'
import { usableToken } from './tokens'
import { forwardRelayed } from './relay-forward'
import type { RelayTransfers } from './relay-transfers'
import { DIGEST_HEADER, TOKEN_HEADER, ZERO_HEADER } from './transfer-headers'

/** Transfers kept in memory with the digests hashed so far; an evicted one hashes again when asked for its manifest. */
const MAX_TRANSFERS = 64
/** How often, at most, a transfer's new digests are written to the site state (a restarted source still vouches for them). */
const KEEP_DIGESTS_MS = 200

export interface SourceServerOptions {
  index: number
  state: Pick<TokenStore, 'token' | 'setTokenManifest' | 'setTokenPlan'>
  tls: TlsIdentity
  throttle?: Throttle
  /** The transfers this site relays as an Intermediary (policy.relayTransfers); their tokens are served by forwarding. */
  relay?: { transfers: RelayTransfers, timeoutMs: number }
  log: (event: Record<string, unknown>) => void
}

/**
 * A transfer proxy's data channel, the source side: a destination proxy presenting the token and
 * the client certificate the token is bound to reads the file listing, chunks of the VM's files and,
 * at the end, the manifest. It serves the files fixed when the transfer was prepared and only opens
 * and reads them. Nothing here names a host: the token is the only handle.
 */
export function createSourceServer (options: SourceServerOptions): Server {
  const transfers = new Map<string, SourceTransfer>()
  const keeper = new DigestKeeper(options.state, options.log)
  // The first chunk of a transfer is hashed before it is sent: its worker is ready beforehand.
  chunkHasher().warm()
  const server = createServer({
    key: options.tls.key, cert: options.tls.cert, requestCert: true, rejectUnauthorized: false,
    // AES-128-GCM first (AES-NI): the cheapest of TLS 1.3's suites per byte here; the others stay allowed.
    ciphers: `TLS_AES_128_GCM_SHA256:${DEFAULT_CIPHERS}`, honorCipherOrder: true,
  }, (req, res) => {
    serve(options, transfers, keeper, req, res).catch((err) => sendProblem(res, toProtocolError(err), options))
  })
  server.keepAliveTimeout = 5000
  // Who connects is logged (certificate and address): where the files flowed can be checked afterwards.
  server.on('secureConnection', (socket: TLSSocket) => {
    options.log({ event: 'proxy-connection', proxy: options.index, peer: socket.getPeerCertificate()?.fingerprint256 ?? null, address: socket.remoteAddress ?? null })
  })
  server.on('close', () => keeper.flush())
  // A destination that stops reading holds a chunk buffer: its connection goes after a minute of silence.
  server.setTimeout(60_000)
  return server
}

async function serve (options: SourceServerOptions, transfers: Map<string, SourceTransfer>, keeper: DigestKeeper, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const relayed = options.relay?.transfers.transfer(header(req, TOKEN_HEADER))
  if (relayed !== undefined) { await forwardRelayed(relayed, options.tls, options.relay!.timeoutMs, req, res); return }
  if (req.method !== 'GET') throw new ProtocolError('unknown-operation', 'the transfer proxy serves GET only')
  const token = usableToken(options.state, header(req, TOKEN_HEADER), 'source', options.index)
  const peer = (req.socket as TLSSocket).getPeerCertificate()
  if (peer?.fingerprint256 === undefined || peer.fingerprint256 !== token.boundTo) {
    throw new ProtocolError('token-foreign', 'the token is bound to another destination')
  }
  const transfer = transferOf(transfers, token)
  const url = new URL(req.url ?? '/', 'https://proxy')
  if (url.pathname === '/v1/transfer/files') {
    sendJson(res, transfer.listing())
    return
  }
  if (url.pathname === '/v1/transfer/manifest') {
    if (token.manifest !== null) { sendJson(res, token.manifest); return }
    const manifest = await transfer.manifest()
    options.state.setTokenManifest(token.token, manifest)
    sendJson(res, manifest)
    return
  }
  const match = /^\/v1\/transfer\/files\/([^/]+)$/.exec(url.pathname)
  const name = match === null ? undefined : decodeURIComponent(match[1])
  if (name === undefined || !transfer.has(name)) throw new ProtocolError('unknown-operation', 'no such file in this transfer')
  const index = url.searchParams.get('chunk')
  if (index === null || !/^\d{1,9}$/.test(index)) throw new ProtocolError('bad-request', 'chunk must be a chunk index')
  const chunk = await transfer.chunk(name, Number(index))
  keeper.changed(token.token, transfer)
  // The buffer goes back to the pool once the response is flushed or torn down, never before.
  res.once('close', chunk.release)
  if (res.destroyed) chunk.release()
  if (chunk.data !== null && options.throttle) await options.throttle.take(chunk.length)
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': chunk.data === null ? 0 : chunk.length,
    [DIGEST_HEADER]: chunk.digest,
    ...(chunk.data === null ? { [ZERO_HEADER]: '1' } : {}),
  })
  res.end(chunk.data ?? undefined)
}

function transferOf (transfers: Map<string, SourceTransfer>, token: TokenRecord): SourceTransfer {
  let transfer = transfers.get(token.token)
  if (transfer === undefined) {
    if (token.plan == null) throw new ProtocolError('token-unknown', 'the transfer is not prepared')
    transfer = new SourceTransfer(token.vmId, token.plan)
    transfers.set(token.token, transfer)
    if (transfers.size > MAX_TRANSFERS) transfers.delete(transfers.keys().next().value as string)
  }
  return transfer
}

/**
 * Writes transfers' digests to the site state as they grow: at once after a quiet spell, then at
 * most every KEEP_DIGESTS_MS (the plan of a large VM is a few hundred KB of JSON). A source killed
 * in between loses only the last digests: those chunks are fetched again.
 */
class DigestKeeper {
  private readonly dirty = new Map<string, SourceTransfer>()
  private timer: NodeJS.Timeout | undefined
  private last = 0

  constructor (private readonly state: Pick<TokenStore, 'setTokenPlan'>, private readonly log: SourceServerOptions['log']) {}

  changed (token: string, transfer: SourceTransfer): void {
    this.dirty.set(token, transfer)
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.last + KEEP_DIGESTS_MS - Date.now()))
    this.timer.unref()
  }

  /** Writes what changed now (also when the server closes). A failed write costs refetched chunks after a restart, nothing else. */
  flush (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.last = Date.now()
    try {
      for (const [token, transfer] of this.dirty) this.state.setTokenPlan(token, transfer.snapshot())
    } catch (err) {
      this.log({ event: 'proxy-error', error: `keeping chunk digests: ${String(err)}` })
    }
    this.dirty.clear()
  }
}

function sendJson (res: ServerResponse, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value))
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

function header (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

function sendProblem (res: ServerResponse, err: ProtocolError, options: SourceServerOptions): void {
  if (err.code === 'internal') options.log({ event: 'proxy-error', error: String(err.cause ?? err) })
  if (res.headersSent) { res.destroy(); return }
  const body = Buffer.from(JSON.stringify(toProblemDocument(err)))
  res.writeHead(err.status, { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': body.length })
  res.end(body)
}
