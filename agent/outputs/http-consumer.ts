import { createHash } from 'node:crypto'
import type { AgentStore } from '../state/agent-store'

const BATCH = 100
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
  private stopped = false
  private timer?: NodeJS.Timeout
  readonly stats = { sent: 0, failedAttempts: 0 }

  constructor (
    readonly name: string,
    private readonly url: string,
    private readonly store: AgentStore,
    private readonly log: (line: string) => void,
  ) {}

  start (): void {
    this.schedule(0)
  }

  /** New deliveries are in the outbox: send soon. */
  kick (): void {
    if (!this.sending) this.schedule(0)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private schedule (delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.sendDue(), delayMs)
  }

  private async sendDue (): Promise<void> {
    if (this.sending || this.stopped) return
    this.sending = true
    try {
      for (;;) {
        const due = this.store.due(this.name, Date.now(), BATCH)
        if (due.length === 0) break
        const ok = await this.post(due.map((d) => d.id), due.length === 1 ? due[0].body : `[${due.map((d) => d.body).join(',')}]`)
        if (ok) {
          this.store.ack(this.name, due.map((d) => d.id))
          this.stats.sent += due.length
          continue
        }
        const attempts = Math.max(...due.map((d) => d.attempts)) + 1
        const backoff = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(attempts, 16))
        this.store.retryLater(this.name, due.map((d) => d.id), Date.now() + backoff * (0.5 + Math.random() / 2))
      }
    } finally {
      this.sending = false
      this.schedule(IDLE_POLL_MS)
    }
  }

  private async post (ids: string[], body: string): Promise<boolean> {
    const key = ids.length === 1 ? ids[0] : createHash('sha256').update(ids.join('\n')).digest('base64url')
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      await response.arrayBuffer()
      if (response.ok) return true
      this.failed(`HTTP ${response.status}`)
    } catch (err) {
      this.failed((err as Error).message)
    }
    return false
  }

  private failed (reason: string): void {
    if (this.stats.failedAttempts++ % 20 === 0) this.log(`consumer ${this.name}: delivery failed (${reason}); kept in the outbox, retrying with backoff`)
  }
}
