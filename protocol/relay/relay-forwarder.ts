import { toProtocolError } from '../errors'
import type { Delivery } from './delivery'
import type { QueuedBatch, RelayOutbox } from './relay-outbox'
import { backoffMs } from '../backoff'

/** Sends one batch to a next hop as one signed request; resolves once that hop has stored it. */
export type SendBatch = (nextHop: string, deliveries: Delivery[]) => Promise<unknown>

export interface ForwarderOptions {
  nextHop: string
  outbox: RelayOutbox
  send: SendBatch
  lingerMs: number
  maxBytes: number
  log: (event: Record<string, unknown>) => void
}

const BACKOFF = { minMs: 100, maxMs: 10_000, jitter: true }
/** Requests in flight to one hop: while one waits for its answer the next batch is already on its way. */
const MAX_IN_FLIGHT = 2

/**
 * Drains the outbox rows of one next hop: waits `lingerMs` after the first new delivery so a burst
 * shares one signed request, sends the oldest rows as one batch (up to MAX_IN_FLIGHT batches at
 * once), deletes them after the hop's 2xx, and goes on at once while rows remain. A retryable
 * failure (hop down, timeout, an answer that cannot be trusted) backs off exponentially and then
 * sends the same rows again; a batch refused for good is split in halves until the refused
 * deliveries are found, which are kept as dead (logged) so they never block the rest.
 */
export class RelayForwarder {
  private timer?: NodeJS.Timeout
  private inFlight = 0
  /** Rows up to this seq are in flight; reset when nothing is (seqs only grow: AUTOINCREMENT). */
  private takenUpTo = 0
  private backingOff = false
  private failures = 0
  private stopped = false
  private idle?: () => void
  readonly stats = { sent: 0, batches: 0, failedAttempts: 0, dead: 0 }

  constructor (private readonly options: ForwarderOptions) {}

  /** New rows are queued: send after the linger (unless requests, a linger or a backoff are pending: they pick the rows up). */
  kick (): void {
    if (this.inFlight > 0 || this.timer !== undefined || this.stopped || this.backingOff) return
    this.timer = setTimeout(() => { this.timer = undefined; this.pump() }, this.options.lingerMs)
  }

  /** Stops sending; resolves when no request is in flight. */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.inFlight > 0) await new Promise<void>((resolve) => { this.idle = resolve })
  }

  private pump (): void {
    while (this.inFlight < MAX_IN_FLIGHT && !this.stopped && !this.backingOff) {
      const batch = this.options.outbox.due(this.options.nextHop, this.options.maxBytes, this.takenUpTo)
      if (batch.deliveries.length === 0) return
      this.takenUpTo = batch.seqs[batch.seqs.length - 1]
      this.inFlight++
      void this.sendBatch(batch)
    }
  }

  private async sendBatch (batch: QueuedBatch): Promise<void> {
    const dead: Delivery[] = []
    let outcome: 'done' | 'retry' = 'retry'
    try {
      outcome = await this.sendAll(batch.deliveries, dead)
      if (outcome === 'done') {
        this.options.outbox.settle(this.options.nextHop, batch, dead)
        this.failures = 0
        this.stats.sent += batch.deliveries.length - dead.length
        this.stats.batches++
      }
    } catch (err) {
      this.options.log({ event: 'monitoring-forward-failed', to: this.options.nextHop, error: String(err) })
    } finally {
      this.inFlight--
      if (outcome === 'retry' && !this.backingOff) {
        this.backingOff = true
        const wait = backoffMs(this.failures++, BACKOFF)
        clearTimeout(this.timer)
        this.timer = setTimeout(() => { this.timer = undefined; this.backingOff = false; this.pump() }, wait)
      }
      if (this.inFlight === 0) {
        this.takenUpTo = 0
        this.idle?.()
      }
      this.pump()
    }
  }

  /** 'done' when the hop stored every delivery except those put in `dead`; 'retry' to send the batch again later. */
  private async sendAll (deliveries: Delivery[], dead: Delivery[]): Promise<'done' | 'retry'> {
    try {
      await this.options.send(this.options.nextHop, deliveries)
      return 'done'
    } catch (err) {
      const problem = toProtocolError(err)
      if (this.stats.failedAttempts++ % 20 === 0) {
        this.options.log({ event: 'monitoring-forward-failed', to: this.options.nextHop, deliveries: deliveries.length, code: problem.code, retryable: problem.retryable })
      }
      // bad-response: the answer could not be trusted (unsigned, cut short), which says nothing about the batch.
      if (problem.retryable || problem.code === 'bad-response' || this.stopped) return 'retry'
      if (deliveries.length === 1) {
        dead.push(deliveries[0])
        this.stats.dead++
        this.options.log({ event: 'monitoring-delivery-refused', to: this.options.nextHop, id: deliveries[0].id, code: problem.code, detail: problem.message })
        return 'done'
      }
      const half = Math.ceil(deliveries.length / 2)
      if (await this.sendAll(deliveries.slice(0, half), dead) === 'retry') return 'retry'
      return this.sendAll(deliveries.slice(half), dead)
    }
  }
}

