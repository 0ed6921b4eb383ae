import { createHash } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { AgentStore } from '../state/agent-store'

const BATCH = 500
/**
 * How long new deliveries wait to share one POST. Each POST costs the agent far more CPU than
 * queueing a delivery does; 5 ms keeps "as soon as available" well inside its latency budget.
 */
const LINGER_MS = 5
const REQUEST_TIMEOUT_MS = 10_000
const MIN_BACKOFF_MS = 200
const MAX_BACKOFF_MS = 30_000
const IDLE_POLL_MS = 1000

/**
 * Sends one consumer's outbox: POSTs deliveries as JSON (one object, or an array when a backlog
 * built up) with an Idempotency-Key, removes them from the outbox only after a 2xx, and retries
 * the rest with exponential backoff. So a receiver sees each delivery at least once; every
 * delivery carries its own `id` for dropping repeats.
 */
export class HttpConsumer {
  private sending = false
  private lingering = false
  private readonly target: URL
  private readonly agent: HttpAgent
  private stopped = false
  private timer?: NodeJS.Timeout
  readonly stats = { sent: 0, failedAttempts: 0 }

  constructor (
    readonly name: string,
    url: string,
    private readonly store: AgentStore,
    private readonly log: (line: string) => void,
  ) {
    this.target = new URL(url)
    this.agent = this.target.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true })
  }

  start (): void {
    this.schedule(0)
  }

  /** New deliveries are in the outbox: send soon (after a short linger that lets a burst share one POST). */
  kick (): void {
    if (!this.sending && !this.lingering) {
      this.lingering = true
      this.schedule(LINGER_MS)
    }
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.agent.destroy()
  }

  private schedule (delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.sendDue(), delayMs)
  }

  private async sendDue (): Promise<void> {
    this.lingering = false
    if (this.sending || this.stopped) return
    this.sending = true
    try {
      for (;;) {
        const due = this.store.due(this.name, Date.now(), BATCH)
        if (due.length === 0) break
        const ok = await this.post(due.map((d) => d.id), due.length === 1 ? due[0].body : `[${due.map((d) => d.body).join(',')}]`)
        if (ok) {
          this.store.ack(due)
          this.stats.sent += due.length
          continue
        }
        const attempts = Math.max(...due.map((d) => d.attempts)) + 1
        const backoff = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(attempts, 16))
        this.store.retryLater(due, Date.now() + backoff * (0.5 + Math.random() / 2))
      }
    } finally {
      this.sending = false
      this.schedule(IDLE_POLL_MS)
    }
  }

  /** node:http with keep-alive: several times cheaper per request than fetch here. */
  private post (ids: string[], body: string): Promise<boolean> {
    const key = ids.length === 1 ? ids[0] : createHash('sha256').update(ids.join('\n')).digest('base64url')
    const send = this.target.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve) => {
      const req = send(this.target, {
        method: 'POST',
        agent: this.agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': key },
      }, (res) => {
        res.resume()
        res.on('end', () => {
          const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300
          if (!ok) this.failed(`HTTP ${res.statusCode}`)
          resolve(ok)
        })
        res.on('error', (err) => { this.failed(err.message); resolve(false) })
      })
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
      req.on('error', (err) => { this.failed(err.message); resolve(false) })
      req.end(body)
    })
  }

  private failed (reason: string): void {
    if (this.stats.failedAttempts++ % 20 === 0) this.log(`consumer ${this.name}: delivery failed (${reason}); kept in the outbox, retrying with backoff`)
  }
}
