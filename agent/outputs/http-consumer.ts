import { createHash } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { readHostSecretKey } from '../../protocol/crypto/host-key'
import { signIngestRequest } from '../../protocol/relay/host-signature'
import type { AgentStore, QueuedDelivery } from '../state/agent-store'
import type { OutboxConsumer } from './outbox-consumer'
import { OutboxSender, type BatchResult } from './outbox-sender'

const BATCH = 500
/**
 * Sends start at least this far apart: a delivery queued while idle leaves at once, and under load
 * each POST takes what queued meanwhile. A POST costs the agent far more CPU than queueing a
 * delivery does; at most 100 POSTs a second keeps that cost flat as the row rate grows.
 */
const SPACING_MS = 10
const REQUEST_TIMEOUT_MS = 10_000

/**
 * Sends one consumer's outbox: POSTs deliveries as JSON (one object, or an array when a backlog
 * built up) with an Idempotency-Key; the outbox sender removes them only after a 2xx and retries
 * the rest with exponential backoff. So a receiver sees each delivery at least once; every
 * delivery carries its own `id` for dropping repeats.
 */
export class HttpConsumer implements OutboxConsumer {
  private readonly target: URL
  private readonly agent: HttpAgent
  private readonly sender: OutboxSender
  /** The host key, read once at the first send (a missing file fails sends, and is named in the reason). */
  private secretKey?: Promise<Uint8Array>

  constructor (
    readonly name: string,
    url: string,
    store: AgentStore,
    log: (line: string) => void,
    /** Signs each batch as this host (protocol/relay/host-signature.ts). */
    private readonly signAs?: { host: string, keyFile: string },
  ) {
    this.target = new URL(url)
    this.agent = this.target.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true })
    this.sender = new OutboxSender({ name, store, log, batch: BATCH, spacingMs: SPACING_MS, send: (due) => this.send(due) })
  }

  get stats (): OutboxSender['stats'] {
    return this.sender.stats
  }

  start (): void {
    this.sender.start()
  }

  kick (): void {
    this.sender.kick()
  }

  stop (): void {
    this.sender.stop()
    this.agent.destroy()
  }

  private async send (due: QueuedDelivery[]): Promise<BatchResult> {
    const body = due.length === 1 ? due[0].body : `[${due.map((d) => d.body).join(',')}]`
    const failure = await this.post(due.map((d) => d.id), body)
    return failure === undefined ? { failed: [] } : { failed: due, reason: failure }
  }

  /** node:http with keep-alive: several times cheaper per request than fetch here. Resolves to why it failed, if it did. */
  private async post (ids: string[], body: string): Promise<string | undefined> {
    const key = ids.length === 1 ? ids[0] : createHash('sha256').update(ids.join('\n')).digest('base64url')
    const send = this.target.protocol === 'https:' ? httpsRequest : httpRequest
    let signature: Record<string, string> = {}
    if (this.signAs !== undefined) {
      try {
        this.secretKey ??= readHostSecretKey(this.signAs.keyFile)
        signature = await signIngestRequest(this.target.pathname, this.signAs.host, await this.secretKey, Buffer.from(body))
      } catch (err) {
        this.secretKey = undefined
        return `cannot sign as host ${this.signAs.host}: ${(err as Error).message}`
      }
    }
    return new Promise((resolve) => {
      const req = send(this.target, {
        method: 'POST',
        agent: this.agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': key, ...signature },
      }, (res) => {
        res.resume()
        res.on('end', () => {
          const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300
          resolve(ok ? undefined : `HTTP ${res.statusCode}`)
        })
        res.on('error', (err) => resolve(err.message))
      })
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
      req.on('error', (err) => resolve(err.message))
      req.end(body)
    })
  }
}
