import { createReadStream } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { ProtocolError, toProtocolError } from '../errors'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../http/problem'
import type { VmHost } from '../../host/vm-folder/vm-host'
import type { TokenRecord, TokenStore } from './token-record'
import type { TlsIdentity } from '../crypto/tls-certificate'
import type { Throttle } from './throttle'
import { usableToken } from './tokens'

export const TOKEN_HEADER = 'fedvm-token'
/** Read size for served ranges: 128 KiB measured fastest through TLS here (1 MiB: -40 %; see bench/transfer). */
const READ_BYTES = 128 * 1024

export interface SourceServerOptions {
  index: number
  state: Pick<TokenStore, 'token'>
  tls: TlsIdentity
  hostFor: (record: TokenRecord) => VmHost
  throttle?: Throttle
  log: (event: Record<string, unknown>) => void
}

/**
 * A transfer proxy's data channel, the source side: a destination proxy presenting the token and
 * the client certificate the token is bound to reads the manifest and byte ranges of the VM's files.
 * Nothing here names a host: the token is the only handle.
 */
export function createSourceServer (options: SourceServerOptions): Server {
  const server = createServer({ key: options.tls.key, cert: options.tls.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    serve(options, req, res).catch((err) => sendProblem(res, toProtocolError(err), options))
  })
  server.keepAliveTimeout = 5000
  return server
}

async function serve (options: SourceServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET') throw new ProtocolError('unknown-operation', 'the transfer proxy serves GET only')
  const token = usableToken(options.state, header(req, TOKEN_HEADER), 'source', options.index)
  const peer = (req.socket as TLSSocket).getPeerCertificate()
  if (peer?.fingerprint256 === undefined || peer.fingerprint256 !== token.boundTo) {
    throw new ProtocolError('token-foreign', 'the token is bound to another destination')
  }
  const manifest = token.manifest
  if (manifest === null) throw new ProtocolError('token-unknown', 'the transfer is not prepared')
  const url = new URL(req.url ?? '/', 'https://proxy')
  if (url.pathname === '/v1/transfer/manifest') {
    const body = Buffer.from(JSON.stringify(manifest))
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
    return
  }
  const match = /^\/v1\/transfer\/files\/([^/]+)$/.exec(url.pathname)
  const name = match === null ? undefined : decodeURIComponent(match[1])
  const entry = manifest.files.find((file) => file.name === name)
  if (entry === undefined) throw new ProtocolError('unknown-operation', 'no such file in this transfer')
  const file = (await options.hostFor(token).listFiles(token.vmId)).find((f) => f.name === entry.name)
  if (file === undefined || file.size !== entry.size) throw new ProtocolError('transfer-failed', 'the VM file changed since the transfer was prepared')
  const range = parseRange(header(req, 'range'), entry.size)
  res.writeHead(range.partial ? 206 : 200, {
    'content-type': 'application/octet-stream',
    'content-length': range.end - range.start,
    ...(range.partial ? { 'content-range': `bytes ${range.start}-${range.end - 1}/${entry.size}` } : {}),
  })
  if (range.end === range.start) { res.end(); return }
  for await (const chunk of createReadStream(file.path, { start: range.start, end: range.end - 1, highWaterMark: READ_BYTES })) {
    if (options.throttle) await options.throttle.take((chunk as Buffer).length)
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve))
    if (res.destroyed) return
  }
  res.end()
}

function parseRange (value: string | undefined, size: number): { start: number, end: number, partial: boolean } {
  if (value === undefined) return { start: 0, end: size, partial: false }
  const m = /^bytes=(\d+)-(\d+)$/.exec(value)
  if (m === null) throw new ProtocolError('bad-request', 'Range must be bytes=START-END')
  const start = Number(m[1])
  const end = Number(m[2]) + 1
  if (start >= end || end > size) throw new ProtocolError('bad-request', 'the range is outside the file')
  return { start, end, partial: true }
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
