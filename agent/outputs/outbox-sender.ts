import type { AgentStore, QueuedDelivery } from '../state/agent-store'
import { isStorageError } from '../state/storage-health'
import { backoffMs } from '../../protocol/backoff'

const BACKOFF = { minMs: 200, maxMs: 30_000, jitter: true }
const IDLE_POLL_MS = 1000

/** What a transport did with a batch: the deliveries it could not get acknowledged (the rest were), and why. */
export interface BatchResult {
  failed: readonly QueuedDelivery[]
  reason?: string
}

export interface OutboxSenderOptions {
  /** The outbox key. */
  name: string
  store: AgentStore
  /** Sends a batch; resolves (never rejects) once every delivery in it is acknowledged or failed. */
  send: (due: QueuedDelivery[]) => Promise<BatchResult>
  /** At most this many deliveries per send. */
  batch: number
  /** How long new deliveries wait to share one send. */
  lingerMs: number
  log: (line: string) => void
  /** False while the transport cannot send at all (disconnected): nothing is tried, nothing counts as an attempt. */
  ready?: () => boolean
}

/**
 * The loop every outbox consumer shares: takes the consumer's due deliveries in queue order, hands
 * them to its transport a batch at a time, removes a delivery from the outbox only once the
 * transport says it was acknowledged, and gives the failed ones exponential backoff. So a receiver
 * sees each delivery at least once; its `id` lets it drop repeats.
 */
export class OutboxSender {
  readonly stats = { sent: 0, failedAttempts: 0 }
  private sending = false
  private lingering = false
  private stopped = false
  private timer?: NodeJS.Timeout

  constructor (private readonly options: OutboxSenderOptions) {}

  start (): void {
    this.schedule(0)
  }

  /** New deliveries are in the outbox: send soon (after a short linger that lets a burst share one send). */
  kick (): void {
    if (!this.sending && !this.lingering) {
      this.lingering = true
      this.schedule(this.options.lingerMs)
    }
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  /** Logs a failure, one in twenty (a receiver that is down must not flood the log). */
  failed (reason: string): void {
    if (this.stats.failedAttempts++ % 20 === 0) this.options.log(`consumer ${this.options.name}: delivery failed (${reason}); kept in the outbox, retrying with backoff`)
  }

  private schedule (delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.sendDue(), delayMs)
  }

  private async sendDue (): Promise<void> {
    this.lingering = false
    if (this.sending || this.stopped) return
    const { store, name, ready } = this.options
    this.sending = true
    try {
      while (!this.stopped && (ready?.() ?? true)) {
        const due = store.due(name, Date.now(), this.options.batch)
        if (due.length === 0) break
        const { failed, reason } = await this.options.send(due)
        // Stopped meanwhile: the store may be closed; what was sent is sent again next time (ids make that harmless).
        if (this.stopped) return
        const failedSeqs = new Set(failed.map((d) => d.seq))
        const acked = failed.length === 0 ? due : due.filter((d) => !failedSeqs.has(d.seq))
        if (acked.length > 0) {
          store.ack(acked)
          this.stats.sent += acked.length
        }
        if (failed.length > 0) {
          this.failed(reason ?? 'not acknowledged')
          const attempts = Math.max(...failed.map((d) => d.attempts)) + 1
          store.retryLater(failed, Date.now() + backoffMs(attempts, BACKOFF))
        }
      }
    } catch (err) {
      // The store refused a write (counted and logged there): acknowledged deliveries it could not
      // remove are sent again (their ids make that harmless); the idle poll tries again.
      if (!isStorageError(err)) throw err
    } finally {
      this.sending = false
      this.schedule(IDLE_POLL_MS)
    }
  }
}
