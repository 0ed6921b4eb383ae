import { toProtocolError, type ProblemCode, type ProtocolError, type RefusedItem } from '../errors'
import type { Delivery } from './delivery'
import type { DeadDelivery, QueuedBatch, RelayOutbox } from './relay-outbox'
import { backoffMs } from '../backoff'

/**
 * Sends one batch to a next hop as one signed request; resolves once that hop has stored it. A
 * refusal is thrown as a ProtocolError, with the hop's `refused` list when it named deliveries.
 */
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
/**
 * Refusals about who sends, not what: the hop does not know this site's key yet, the clocks
 * disagree, a message id seen before (the next request has a new one). Retried like a hop that is
 * down: narrowing the batch by halves would set every delivery apart for a fault of none of them.
 */
const SENDER_CODES: ReadonlySet<ProblemCode> = new Set(['unknown-sender', 'bad-signature', 'stale-timestamp', 'replayed-message'])
/** Requests in flight to one hop: while one waits for its answer the next batch is already on its way. */
const MAX_IN_FLIGHT = 2

/**
 * Drains the outbox rows of one next hop: waits `lingerMs` after the first new delivery so a burst
 * shares one signed request, sends the oldest rows as one batch (up to MAX_IN_FLIGHT batches at
 * once), deletes them after the hop's 2xx, and goes on at once while rows remain. A retryable
 * failure (hop down, timeout, an answer that cannot be trusted) backs off exponentially and then
 * sends the same rows again. A batch refused for good loses the deliveries the hop's refusal lists
 * (as the agent does with a site's ingest), or, when it names none, is split in halves until the
 * refused deliveries are found; they are kept as dead (logged) so they never block the rest. When
 * part of a batch was stored, the rest is queued anew in the same transaction that forgets the
 * batch: no delivery is sent twice or lost.
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
    const outcome: BatchOutcome = { accepted: new Set(), dead: [] }
    let retry = true
    try {
      await this.sendAll(batch.deliveries, outcome)
      // What the hop took or refused for good leaves the queue; the rest of the batch is queued anew, so nothing goes twice.
      if (outcome.accepted.size > 0 || outcome.dead.length > 0) {
        const gone = new Set<Delivery>([...outcome.accepted, ...outcome.dead.map((d) => d.delivery)])
        const again = batch.deliveries.filter((d) => !gone.has(d))
        this.options.outbox.settle(this.options.nextHop, batch, outcome.dead, again)
        this.stats.sent += outcome.accepted.size
        this.stats.batches++
        retry = again.length > 0
        if (!retry) this.failures = 0
      }
    } catch (err) {
      this.options.log({ event: 'monitoring-forward-failed', to: this.options.nextHop, error: String(err) })
    } finally {
      this.inFlight--
      if (retry && !this.backingOff) {
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

  /**
   * Sends `deliveries`, adding to `outcome` what the hop stored and what it refused for good. A
   * refusal that lists the refused deliveries (`refused: [{index, id, code, retryable, detail}]`,
   * nothing of the request stored) sets those aside, or leaves those marked retryable for later,
   * and sends the others again at once; a refusal that names none is narrowed by halves. Stops at
   * the first retryable failure: what is not in `outcome` then is sent again after a backoff.
   */
  private async sendAll (deliveries: readonly Delivery[], outcome: BatchOutcome): Promise<'done' | 'retry'> {
    let rest = deliveries
    while (rest.length > 0) {
      let problem: ProtocolError
      try {
        await this.options.send(this.options.nextHop, [...rest])
        for (const d of rest) outcome.accepted.add(d)
        return 'done'
      } catch (err) {
        problem = toProtocolError(err)
      }
      if (this.stats.failedAttempts++ % 20 === 0) {
        this.options.log({ event: 'monitoring-forward-failed', to: this.options.nextHop, deliveries: rest.length, code: problem.code, retryable: problem.retryable })
      }
      // bad-response: the answer could not be trusted (unsigned, cut short), which says nothing about the batch.
      if (problem.retryable || problem.code === 'bad-response' || SENDER_CODES.has(problem.code) || this.stopped) return 'retry'
      const listed = listedItems(problem.refused, rest)
      if (listed.length > 0) {
        let later = false
        for (const item of listed) {
          if (item.retryable) later = true
          else this.setAside(outcome, rest[item.index], item.code, item.detail)
        }
        const named = new Set(listed.map((item) => item.index))
        rest = rest.filter((_, i) => !named.has(i))
        // A delivery refused for now goes again after the backoff; the others of the batch go now.
        if (later) {
          if (rest.length > 0) await this.sendAll(rest, outcome)
          return 'retry'
        }
        continue
      }
      if (rest.length === 1) {
        this.setAside(outcome, rest[0], problem.code, problem.message)
        return 'done'
      }
      const half = Math.ceil(rest.length / 2)
      if (await this.sendAll(rest.slice(0, half), outcome) === 'retry') return 'retry'
      return this.sendAll(rest.slice(half), outcome)
    }
    return 'done'
  }

  /** A delivery the hop refused for good: kept apart (never sent again, never blocking the rest) and logged by id. */
  private setAside (outcome: BatchOutcome, delivery: Delivery, code: string, detail: string): void {
    outcome.dead.push({ delivery, code, detail })
    this.stats.dead++
    this.options.log({ event: 'monitoring-delivery-refused', to: this.options.nextHop, id: delivery.id, code, detail })
  }
}

/** What a batch came to so far: the deliveries the hop stored, and those it refused for good. */
interface BatchOutcome {
  accepted: Set<Delivery>
  dead: DeadDelivery[]
}

/**
 * The items of a refusal's list that name a delivery of the request: a place inside it, and the
 * delivery's id when the item gives one (a list that does not match the request is not used).
 */
function listedItems (refused: readonly RefusedItem[] | undefined, sent: readonly Delivery[]): RefusedItem[] {
  const items = new Map<number, RefusedItem>()
  for (const item of refused ?? []) {
    if (item.index >= sent.length || (item.id !== undefined && item.id !== sent[item.index].id)) return []
    items.set(item.index, item)
  }
  return [...items.values()]
}

