import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { ProtocolError, toProtocolError } from '../errors'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../http/problem'
import { parseJson, readBody } from '../http/read-body'
import { verifyIngestRequest, type HostVerifier } from './host-signature'
import { hostSender, LOCAL, type MonitoringRelay } from './monitoring-relay'

/** An agent's backlog can be one large POST (its consumer sends up to 500 deliveries at once). */
const MAX_INGEST_BYTES = 16 * 1024 * 1024
export const INGEST_PATH = '/v1/deliveries'

export interface IngestOptions {
  relay: MonitoringRelay
  /** Checks each batch's host signature; undefined only when the site config turns authentication off. */
  hosts?: HostVerifier
  log: (event: Record<string, unknown>) => void
}

/**
 * The local ingest: this site's hosts' agents POST one delivery or a list to /v1/deliveries (their
 * `http` consumer). Each batch is signed with the host's key (host-signature.ts) and may hold only
 * deliveries for VMs that the site's location records place on that host. 200 `{accepted}` only
 * once stored durably; a bad delivery is a 400 problem naming the field.
 */
export function createIngestServer (options: IngestOptions): Server {
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err) => options.log({ event: 'ingest-response-failed', error: String(err) }))
  })
  server.keepAliveTimeout = 30_000
  return server
}

async function handle ({ relay, hosts, log }: IngestOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let status = 200
  let payload: unknown
  try {
    if (req.method !== 'POST' || req.url !== INGEST_PATH) throw new ProtocolError('unknown-operation', `POST ${INGEST_PATH}`)
    const body = await readBody(req, MAX_INGEST_BYTES)
    const from = hosts === undefined ? LOCAL : hostSender(await verifyIngestRequest(req.method, INGEST_PATH, req.headers, body, hosts))
    const value = parseJson(body, { exact: true })
    payload = await relay.accept(Array.isArray(value) ? value : [value], from)
  } catch (err) {
    const problem = toProtocolError(err)
    if (problem.status === 401 || problem.status === 403) log({ event: 'ingest-refused', code: problem.code, detail: problem.message, peer: req.socket.remoteAddress })
    status = problem.status
    payload = toProblemDocument(problem)
  }
  const body = Buffer.from(JSON.stringify(payload))
  res.writeHead(status, { 'content-type': status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json', 'content-length': body.length })
  res.end(body)
}
