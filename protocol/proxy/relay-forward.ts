import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { pipeline } from 'node:stream/promises'
import { ProtocolError } from '../errors'
import { pinnedRequest } from '../http/pinned-request'
import type { TlsIdentity } from '../crypto/tls-certificate'
import type { RelayedTransfer } from './relay-transfers'
import { DIGEST_HEADER, TOKEN_HEADER, ZERO_HEADER } from './transfer-headers'

/**
 * Serves one request of a relayed transfer: the Destination proxy's GET (its certificate must be the
 * one the relay is bound to) is asked of the Source proxy with the Source's token and this site's
 * certificate, and the answer streams back as it arrives (status, digest and bytes unchanged, so the
 * Destination checks every chunk against the Source's digests as in a direct transfer).
 */
export async function forwardRelayed (relay: RelayedTransfer, tls: TlsIdentity, timeoutMs: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET') throw new ProtocolError('unknown-operation', 'the transfer proxy serves GET only')
  const peer = (req.socket as TLSSocket).getPeerCertificate()
  if (peer?.fingerprint256 === undefined || peer.fingerprint256 !== relay.boundTo) {
    throw new ProtocolError('token-foreign', 'the token is bound to another destination')
  }
  const path = new URL(req.url ?? '/', 'https://proxy')
  if (!path.pathname.startsWith('/v1/transfer/')) throw new ProtocolError('unknown-operation', 'no such transfer resource')
  const abort = new AbortController()
  res.once('close', () => abort.abort())
  const upstream = await pinnedRequest({ url: relay.upstream.uri, fingerprint: relay.upstream.fingerprint }, {
    method: 'GET',
    path: path.pathname + path.search,
    headers: { [TOKEN_HEADER]: relay.upstream.token },
    clientCert: tls,
    timeoutMs,
    signal: abort.signal,
  })
  // What a relay passes back of the Source proxy's answer: the body's framing and the chunk's digest.
  const headers: Record<string, string> = {}
  for (const name of ['content-type', 'content-length', DIGEST_HEADER, ZERO_HEADER]) {
    const value = upstream.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  res.writeHead(upstream.statusCode ?? 502, headers)
  await pipeline(upstream, res)
}
