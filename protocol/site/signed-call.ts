import { ProtocolError } from '../errors'
import { stringifyExact } from '../exact-json'
import type { SignedRequest } from '../envelope/hop'
import { verifyResponse, RESPONSE_SIGNATURE_HEADER } from '../envelope/signed-response'
import { fromProblemDocument } from '../http/problem'
import { pinnedRequest, readResponseBody } from '../http/pinned-request'

const MAX_RESPONSE_BYTES = 1024 * 1024

/** A site endpoint as the partner list (or, for the CLI's admin requests, the site's own keys) gives it. */
export interface Endpoint {
  id: string
  url: string
  tlsFingerprint: string
  publicKey: Uint8Array
}

/** The request got no answer at all (no connection, a broken one, or none in time): nothing the partner decided. */
export class UnansweredError extends ProtocolError {
  constructor (cause: ProtocolError) {
    super('partner-unreachable', cause.message, { cause, retryable: cause.retryable })
  }
}

/** Sends a signed request (pinned TLS) and returns the answer once its signature checks; a problem document is thrown. */
export async function callSite (endpoint: Endpoint, me: string, request: SignedRequest, options: { windowMs: number, timeoutMs: number }): Promise<unknown> {
  const last = request.hops[request.hops.length - 1]
  const body = Buffer.from(stringifyExact(request))
  let res: Awaited<ReturnType<typeof pinnedRequest>>
  let answer: Buffer
  try {
    res = await pinnedRequest({ url: endpoint.url, fingerprint: endpoint.tlsFingerprint }, {
      method: 'POST', path: `/v1/${request.op}`, headers: { 'content-type': 'application/json' }, body, timeoutMs: options.timeoutMs,
    })
    answer = await readResponseBody(res, MAX_RESPONSE_BYTES)
  } catch (err) {
    if (err instanceof ProtocolError && err.code !== 'partner-unreachable') throw err
    throw new UnansweredError(err instanceof ProtocolError ? err : new ProtocolError('partner-unreachable', 'the connection to the partner broke', { cause: err }))
  }
  const header = res.headers[RESPONSE_SIGNATURE_HEADER]
  await verifyResponse(Array.isArray(header) ? header[0] : header, res.statusCode ?? 0, answer, {
    from: endpoint.id, fromKey: endpoint.publicKey, to: me, replyTo: last.id, windowMs: options.windowMs,
  })
  let value: unknown
  try {
    value = JSON.parse(answer.toString('utf8'))
  } catch (err) {
    throw new ProtocolError('bad-response', `${endpoint.id} answered with invalid JSON`, { cause: err })
  }
  if ((res.statusCode ?? 500) >= 400) throw fromProblemDocument(value, res.statusCode ?? 500)
  return value
}
