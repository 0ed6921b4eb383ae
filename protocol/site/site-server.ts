import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { runController } from '../controller/run-controller'
import { verifyRequest, type VerifiedRequest } from '../envelope/verify-request'
import { signResponse, RESPONSE_SIGNATURE_HEADER } from '../envelope/signed-response'
import { ProtocolError, toProtocolError } from '../errors'
import { handleForcedMigration } from '../handlers/forced-migration'
import { handleInitiateTransfer } from '../handlers/initiate-transfer'
import { handleMigrationRequest } from '../handlers/migration-request'
import { handleTransferCancel, handleTransferVerification } from '../handlers/transfer-verification'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../http/problem'
import { handleMonitoringDeliveries } from '../relay/deliveries-operation'
import { readBody, parseJson } from '../http/read-body'
import { ADMIN_OPERATIONS } from './admin-operations'
import type { Caller, SiteContext } from './site-context'

type Handler = (site: SiteContext, caller: Caller, body: unknown, verified: VerifiedRequest) => Promise<unknown>

/** The four operations of paper III-B, plus cancelling a prepared transfer and relaying monitoring deliveries. */
const OPERATIONS: Record<string, Handler> = {
  'migration-request': (site, caller, body) => handleMigrationRequest(site, caller, body, { delegate: true }),
  'forced-migration': (site, caller, body) => handleForcedMigration(site, caller, body, (vmId, exclude) => runController(site, vmId, exclude)),
  'initiate-transfer': (site, caller, body, verified) => handleInitiateTransfer(site, caller, body, verified.last.ref),
  'transfer-verification': (site, caller, body) => handleTransferVerification(site, caller, body),
  'transfer-cancel': (site, caller, body) => handleTransferCancel(site, caller, body),
  'monitoring-deliveries': (site, caller, body) => handleMonitoringDeliveries(site.monitoring, caller, body),
}

/**
 * The site's control endpoint: POST /v1/OPERATION with a signed request. Sender, signature,
 * timestamp and message id are checked before anything else; every answer, problem documents
 * included, is signed for the sender.
 */
export function createSiteServer (site: SiteContext): Server {
  return createServer({ key: site.tls.key, cert: site.tls.cert }, (req, res) => {
    handle(site, req, res).catch((err) => site.log({ event: 'response-failed', error: String(err) }))
  })
}

async function handle (site: SiteContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let claimed: { from: string, id: string } = { from: 'unknown', id: '' }
  let status = 200
  let payload: unknown
  let op = ''
  try {
    const match = /^\/v1\/([a-z-]{1,40})$/.exec(req.url ?? '')
    if (req.method !== 'POST' || match === null) throw new ProtocolError('unknown-operation', 'POST /v1/OPERATION')
    op = match[1]
    const raw = parseJson(await readBody(req, site.config.limits.maxRequestBytes))
    claimed = claimedSender(raw)
    const verified = await verifyRequest(raw, {
      me: site.id, keyring: site.keyring, replay: site.state, windowMs: site.config.limits.timestampWindowMs,
      chainWindowMs: site.config.limits.chainWindowMs, maxHops: site.config.limits.maxHops,
    })
    if (verified.request.op !== op) throw new ProtocolError('bad-request', 'the signed operation differs from the URL')
    const caller: Caller = { sender: verified.sender, verified }
    const admin = ADMIN_OPERATIONS[op]
    if (admin !== undefined) {
      if (verified.sender !== site.id || verified.request.hops.length !== 1) throw new ProtocolError('not-permitted', 'admin operations are for this site\'s own key')
      payload = await admin(site, verified.request.body)
    } else {
      const handler = OPERATIONS[op]
      if (handler === undefined) throw new ProtocolError('unknown-operation', `no operation ${op}`)
      if (verified.sender === site.id) throw new ProtocolError('not-permitted', 'this site does not send protocol operations to itself')
      payload = await handler(site, caller, verified.request.body, verified)
    }
  } catch (err) {
    const problem = toProtocolError(err)
    site.log({ event: 'refused', op, from: claimed.from, code: problem.code, ...(problem.code === 'internal' ? { error: String(problem.cause) } : {}) })
    status = problem.status
    payload = toProblemDocument(problem)
  }
  const body = Buffer.from(JSON.stringify(payload))
  const signature = await signResponse({ id: site.id, secretKey: site.signing.secretKey }, claimed.from, claimed.id, status, body)
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
