import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { ProtocolError, toProtocolError } from '../errors'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../http/problem'
import { parseJson, readBody } from '../http/read-body'
import { LOCAL, type MonitoringRelay } from './monitoring-relay'

/** An agent's backlog can be one large POST (its consumer sends up to 500 deliveries at once). */
const MAX_INGEST_BYTES = 16 * 1024 * 1024

/**
 * The local ingest: this site's hosts' agents POST one delivery or a list to /v1/deliveries (their
 * `http` consumer), plain HTTP on an address inside the site's trust boundary, as the site's hosts
 * are. 200 `{accepted}` only once stored durably; a bad delivery is a 400 problem naming the field.
 */
export function createIngestServer (relay: MonitoringRelay, log: (event: Record<string, unknown>) => void): Server {
  const server = createServer((req, res) => {
    handle(relay, req, res).catch((err) => log({ event: 'ingest-response-failed', error: String(err) }))
  })
  server.keepAliveTimeout = 30_000
  return server
}

async function handle (relay: MonitoringRelay, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let status = 200
  let payload: unknown
  try {
    if (req.method !== 'POST' || req.url !== '/v1/deliveries') throw new ProtocolError('unknown-operation', 'POST /v1/deliveries')
    const value = parseJson(await readBody(req, MAX_INGEST_BYTES))
    payload = await relay.accept(Array.isArray(value) ? value : [value], LOCAL)
  } catch (err) {
    const problem = toProtocolError(err)
    status = problem.status
    payload = toProblemDocument(problem)
  }
  const body = Buffer.from(JSON.stringify(payload))
  res.writeHead(status, { 'content-type': status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json', 'content-length': body.length })
  res.end(body)
}
