import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { verifyRequest } from '../envelope/verify-request'
import { signResponse, RESPONSE_SIGNATURE_HEADER } from '../envelope/signed-response'
import { ProtocolError, toProtocolError } from '../errors'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../http/problem'
import { readBody, parseJson } from '../http/read-body'
import { refusePrototypeKeys } from '../http/prototype-keys'
import type { Caller } from '../roles/caller'
import { ADMIN_OPERATIONS } from './admin-operations'
import { OPERATIONS, type OperationContext } from './operations'

/**
 * The site's control endpoint: POST /v1/OPERATION with a signed request. Sender, signature,
 * timestamp and message id are checked before anything else; every answer, problem documents
 * included, is signed for the sender.
 */
export function createSiteServer (site: OperationContext): Server {
  return createServer({ key: site.parts.tls.key, cert: site.parts.tls.cert }, (req, res) => {
    handle(site, req, res).catch((err) => site.parts.log({ event: 'response-failed', error: String(err) }))
  })
}

async function handle (site: OperationContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { parts } = site
  let claimed: { from: string, id: string } = { from: 'unknown', id: '' }
  let status = 200
  let payload: unknown
  let op = ''
  try {
    const match = /^\/v1\/([a-z-]{1,40})$/.exec(req.url ?? '')
    if (req.method !== 'POST' || match === null) throw new ProtocolError('unknown-operation', 'POST /v1/OPERATION')
    op = match[1]
    // Deliveries carry 64-bit KPI values: read exactly, so they and the signature over them stay exact.
    const raw = parseJson(await readBody(req, parts.config.limits.maxRequestBytes), { exact: op === 'monitoring-deliveries' })
    claimed = claimedSender(raw)
    const verified = await verifyRequest(raw, {
      me: parts.self, keyring: parts.keyring, replay: parts.state, windowMs: parts.config.limits.timestampWindowMs,
      chainWindowMs: parts.config.limits.chainWindowMs, maxHops: parts.config.limits.maxHops,
    })
    if (verified.request.op !== op) throw new ProtocolError('bad-request', 'the signed operation differs from the URL')
    refusePrototypeKeys(verified.request.body)
    const caller: Caller = { sender: verified.sender, verified }
    const admin = ADMIN_OPERATIONS[op]
    if (admin !== undefined) {
      if (verified.sender !== parts.self || verified.request.hops.length !== 1) throw new ProtocolError('not-permitted', 'admin operations are for this site\'s own key')
      payload = await admin(parts, verified.request.body)
    } else {
      const handler = OPERATIONS[op]
      if (handler === undefined) throw new ProtocolError('unknown-operation', `no operation ${op}`)
      if (verified.sender === parts.self) throw new ProtocolError('not-permitted', 'this site does not send protocol operations to itself')
      payload = await handler(site, caller, verified.request.body, verified)
    }
  } catch (err) {
    const problem = toProtocolError(err)
    parts.log({ event: 'refused', op, from: claimed.from, code: problem.code, ...(problem.code === 'internal' ? { error: String(problem.cause) } : {}) })
    status = problem.status
    payload = toProblemDocument(problem)
  }
  const body = Buffer.from(JSON.stringify(payload))
  const signature = await signResponse({ id: parts.self, secretKey: parts.signing.secretKey }, claimed.from, claimed.id, status, body)
  res.writeHead(status, {
    'content-type': status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json',
    'content-length': body.length,
    [RESPONSE_SIGNATURE_HEADER]: signature,
  })
  res.end(body)
}

/** Who the request says it is from (before verification): only used to address the signed answer. */
function claimedSender (raw: unknown): { from: string, id: string } {
  const hops = (raw as { hops?: unknown })?.hops
  const last = Array.isArray(hops) ? hops[hops.length - 1] as { from?: unknown, id?: unknown } : undefined
  return { from: typeof last?.from === 'string' ? last.from.slice(0, 64) : 'unknown', id: typeof last?.id === 'string' ? last.id.slice(0, 64) : '' }
}
