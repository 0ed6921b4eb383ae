import type { AgentStore, QueuedDelivery } from '../state/agent-store'
import type { DeadLetterReason } from '../state/dead-letters'
import { isStorageError } from '../state/storage-health'
import { backoffMs } from '../../protocol/backoff'

const BACKOFF = { minMs: 200, maxMs: 30_000, jitter: true }
const IDLE_POLL_MS = 1000

/**
 * What a transport did with a batch: the deliveries it could not get acknowledged and why (they are
 * sent again after a backoff), those the receiver refused for good and why (they go to the
 * dead-letter store); the rest were acknowledged.
 */
export interface BatchResult {
  failed: readonly QueuedDelivery[]
  reason?: string
  refused?: ReadonlyArray<{ delivery: QueuedDelivery, reason: DeadLetterReason }>
}

/** How many refused deliveries a log line names by id (the count is always there). */
const IDS_LOGGED = 5

export interface OutboxSenderOptions {
  /** The outbox key. */
  name: string
  store: AgentStore
  /** Sends a batch; resolves (never rejects) once every delivery in it is acknowledged or failed. */
  send: (due: QueuedDelivery[]) => Promise<BatchResult>
  /** At most this many deliveries per send. */
  batch: number
  /**
   * A send starts at least this long after the previous one started. A delivery queued while the
   * consumer is idle leaves at once; under load there are at most 1000/spacingMs sends a second,
   * each taking everything queued meanwhile, so batches grow with the rate and the backlog.
   */
  spacingMs: number
  log: (line: string) => void
  /** False while the transport cannot send at all (disconnected): nothing is tried, nothing counts as an attempt. */
  ready?: () => boolean
  /** The clock (ms), injectable for tests. */
  now?: () => number
}

/**
 * The loop every outbox consumer shares: takes the consumer's due deliveries in queue order, hands
 * them to its transport a batch at a time (one send in flight; what queues meanwhile goes in the
 * next: group commit), removes a delivery from the outbox only once the transport says it was
 * acknowledged, and gives the failed ones exponential backoff. So a receiver sees each delivery at
 * least once; its `id` lets it drop repeats.
 */
export class OutboxSender {
  /** `deadLettered`: deliveries moved to the dead-letter store, per reason (the refusal's code). */
  readonly stats = { sent: 0, failedAttempts: 0, deadLettered: new Map<string, number>(), deadLettersDropped: 0 }
  private sending = false
  private stopped = false
  private timer?: NodeJS.Timeout
  private immediate?: NodeJS.Immediate
  /** When the scheduled look at the outbox runs (ms); Infinity when none is scheduled. */
  private timerAt = Number.POSITIVE_INFINITY
  private lastStart = Number.NEGATIVE_INFINITY
  private readonly now: () => number

  constructor (private readonly options: OutboxSenderOptions) {
    this.now = options.now ?? Date.now
  }

  start (): void {
    this.schedule(0)
  }

  /** New deliveries are in the outbox: send now, or once the spacing since the previous send allows (a running send looks again when it ends). */
  kick (): void {
    if (!this.sending) this.scheduleSend()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearImmediate(this.immediate)
  }

  /** Logs a failure, one in twenty (a receiver that is down must not flood the log). */
  failed (reason: string): void {
    if (this.stats.failedAttempts++ % 20 === 0) this.options.log(`consumer ${this.options.name}: delivery failed (${reason}); kept in the outbox, retrying with backoff`)
  }

  /**
   * Moves deliveries refused for good to the dead-letter store, so the ones behind them go on;
   * counts and logs them (ids and the receiver's reason, never their payload). A store that
   * refuses the write throws: they stay in the outbox and are sent, refused and set aside again.
   */
  private setAside (refused: NonNullable<BatchResult['refused']>): void {
    const dropped = this.options.store.deadLetter(this.options.name, refused, this.now())
    const byReason = new Map<string, typeof refused[number][]>()
    for (const r of refused) byReason.set(r.reason.code, [...(byReason.get(r.reason.code) ?? []), r])
    for (const [code, list] of byReason) {
      this.stats.deadLettered.set(code, (this.stats.deadLettered.get(code) ?? 0) + list.length)
      const ids = list.slice(0, IDS_LOGGED).map((r) => r.delivery.id).join(', ') + (list.length > IDS_LOGGED ? ', …' : '')
      const { status, detail } = list[0].reason
      this.options.log(`consumer ${this.options.name}: ${list.length} deliver${list.length === 1 ? 'y' : 'ies'} refused for good (HTTP ${status} ${code}: ${detail}); moved to the dead-letter store (${ids}), the deliveries behind go on`)
    }
    if (dropped > 0) {
      this.stats.deadLettersDropped += dropped
      this.options.log(`consumer ${this.options.name}: the dead-letter store dropped ${dropped} old entr${dropped === 1 ? 'y' : 'ies'} (past deadLetters.maxRows or maxAgeMs)`)
    }
  }

  private scheduleSend (): void {
    const now = this.now()
    const at = Math.max(now, this.lastStart + this.options.spacingMs)
    if (this.timerAt > at) this.schedule(at - now)
  }

  private schedule (delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    clearImmediate(this.immediate)
    this.timerAt = this.now() + delayMs
    // No delay: later in this turn of the event loop (a timer of 0 waits for the next turn, at least 1 ms).
    if (delayMs <= 0) this.immediate = setImmediate(() => void this.sendDue())
    else this.timer = setTimeout(() => void this.sendDue(), delayMs)
  }

  private async sendDue (): Promise<void> {
    this.timerAt = Number.POSITIVE_INFINITY
    if (this.sending || this.stopped) return
    const { store, name, ready } = this.options
    this.sending = true
    let sent = false
    try {
      if (!(ready?.() ?? true)) return
      const due = store.due(name, this.now(), this.options.batch)
      if (due.length === 0) return
      this.lastStart = this.now()
      sent = true
      const { failed, reason, refused = [] } = await this.options.send(due)
      // Stopped meanwhile: the store may be closed; what was sent is sent again next time (ids make that harmless).
      if (this.stopped) return
      const notAcked = new Set([...failed, ...refused.map((r) => r.delivery)].map((d) => d.seq))
      const acked = notAcked.size === 0 ? due : due.filter((d) => !notAcked.has(d.seq))
      if (acked.length > 0) {
        store.ack(acked)
        this.stats.sent += acked.length
      }
      if (refused.length > 0) this.setAside(refused)
      if (failed.length > 0) {
        this.failed(reason ?? 'not acknowledged')
        const attempts = Math.max(...failed.map((d) => d.attempts)) + 1
        store.retryLater(failed, this.now() + backoffMs(attempts, BACKOFF))
      }
    } catch (err) {
      // The store refused a write (counted and logged there): acknowledged deliveries it could not
      // remove are sent again (their ids make that harmless); the idle poll tries again.
      if (!isStorageError(err)) throw err
      sent = false
    } finally {
      this.sending = false
      // After a send, look again at once (spacing allowing): what queued while it was in flight goes next.
      if (sent) this.scheduleSend()
      else this.schedule(IDLE_POLL_MS)
    }
  }
}
