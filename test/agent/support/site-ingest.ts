import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MemoryReplayCache } from '../../../protocol/envelope/replay-cache'
import { INGEST_PATH } from '../../../protocol/relay/ingest-server'
import { startSiteIngestServer, type SiteIngestServer } from '../../support/site-ingest-server'
import type { Teardownable } from '../../support/teardownable'

/** One POST the ingest saw: the delivery ids it carried (in order) and the status it answered. */
export interface IngestRequest {
  ids: string[]
  status: number
}

/**
 * A site's real monitoring ingest (relay, primary store on a real monitoring.db, HTTP server) for
 * one VM placed on a host of this site, which is the VM's primary, so what it accepts is stored
 * at once. In front of it a gate the test opens and closes: closed, every POST is answered 503 (a
 * site restarting). Every POST and its answer is recorded.
 */
export class SiteIngest {
  readonly requests: IngestRequest[] = []
  /** While true, POSTs are answered 503 without reaching the ingest. */
  closed = false
  /** Whether the site's records place the VM on the host (not yet, for a moment after a migration). */
  placed = true
  /** A batch this says yes to is refused whole (400, a problem document that lists nothing), as an ingest that names no delivery would. */
  refuseWhole?: (ids: string[]) => boolean
  /** With `hostAuth`, the hosts' public keys the site knows (its config's hosts[]), as the test sets them. */
  readonly hostKeys = new Map<string, Uint8Array>()

  private constructor (private readonly front: Server, private readonly ingest: SiteIngestServer) {}

  /** `hostAuth`: the ingest checks each batch's host signature against `hostKeys` (the VM runs on host h1). */
  static async start (t: Teardownable, vm: string, maxClockSkewMs = 60_000, options: { hostAuth?: boolean } = {}): Promise<SiteIngest> {
    // The records and the front read the site's switches (placed, closed, refuseWhole, hostKeys) as the test sets them.
    const ingest = await startSiteIngestServer(t, {
      location: (id) => (id === vm && site.placed ? { kind: 'host', target: 'h1', upstream: null } : undefined),
      maxClockSkewMs,
      hosts: options.hostAuth === true ? { publicKey: (host: string) => site.hostKeys.get(host), windowMs: 30_000, replay: new MemoryReplayCache() } : undefined,
    })
    const front = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        const parsed = JSON.parse(body.toString('utf8')) as { id: string } | Array<{ id: string }>
        const request: IngestRequest = { ids: (Array.isArray(parsed) ? parsed : [parsed]).map((d) => d.id), status: 0 }
        site.requests.push(request)
        res.on('finish', () => { request.status = res.statusCode })
        if (site.closed) {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('the site is restarting')
          return
        }
        if (site.refuseWhole?.(request.ids) === true) {
          res.writeHead(400, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'urn:fedvm:problem:bad-request', title: 'The request is malformed', status: 400, code: 'bad-request', retryable: false, detail: 'a delivery is bad' }))
          return
        }
        // The ingest reads the body from the request: hand it a request that replays what was read.
        const replay = Object.assign(Object.create(req) as typeof req, {
          [Symbol.asyncIterator]: async function * () { yield body },
        })
        ingest.server.emit('request', replay, res)
      })
    })
    const site = new SiteIngest(front, ingest)
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
    // Teardowns run last first: the front closes before the ingest behind it.
    t.teardown(() => new Promise<void>((resolve) => { front.close(() => resolve()); front.closeAllConnections() }))
    return site
  }

  get url (): string {
    return `http://127.0.0.1:${(this.front.address() as AddressInfo).port}${INGEST_PATH}`
  }

  /** The ids the primary store holds, in the order they were stored. */
  stored (): string[] {
    return this.ingest.stored()
  }
}
