import type Database from 'better-sqlite3'
import { backoffMs, type BackoffOptions } from '../../backoff'
import type { Log } from '../../log'
import type { Delivery } from '../../relay/delivery'
import { seriesOf, type SeriesSources } from './delivery-series'
import { RemoteWriteCursor } from './remote-write-cursor'
import { encodeWriteRequest } from './write-request'

export interface RemoteWriterOptions extends SeriesSources {
  /** The receiver, e.g. http://127.0.0.1:9090/api/v1/write (Prometheus with --web.enable-remote-write-receiver). */
  url: string
  /** The primary store's database. */
  db: Database.Database
  log: Log
  /** Deliveries per request. */
  batchSize?: number
  backoff?: BackoffOptions
  /** How long one request may take before it counts as failed and is retried. */
  timeoutMs?: number
}

type Outcome = 'sent' | 'retry'

// Prometheus' TSDB refusing a sample for good. Prometheus 2.42 answers "too old sample" (outside the
// out-of-order window) with 500, not 400, so the message decides: retrying would block the backlog forever.
const SAMPLE_REFUSED = /too old sample|out of bounds|out of order sample|duplicate sample for timestamp/

/**
 * Sends the primary store's deliveries to a Prometheus remote-write receiver, oldest first, each value
 * at its data time, until the receiver has them all; kicked when new deliveries are stored. A
 * receiver that is down or answers 5xx/429 is retried with backoff (nothing is skipped); a request it
 * refuses (4xx: e.g. a sample outside its out-of-order window) is split to find the refused
 * deliveries, which are logged and passed over so the rest still arrive.
 */
export class RemoteWriter {
  private readonly cursor: RemoteWriteCursor
  private readonly batchSize: number
  private readonly backoff: BackoffOptions
  private readonly timeoutMs: number
  private failures = 0
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private closed = false

  constructor (private readonly options: RemoteWriterOptions) {
    this.cursor = new RemoteWriteCursor(options.db, options.url)
    this.batchSize = options.batchSize ?? 500
    this.backoff = options.backoff ?? { minMs: 500, maxMs: 30_000, jitter: true }
    this.timeoutMs = options.timeoutMs ?? 10_000
  }

  /** New deliveries are stored: send them now unless a send runs or a retry waits. */
  readonly kick = (): void => {
    if (this.closed || this.running !== undefined || this.timer !== undefined) return
    this.running = this.drain().finally(() => { this.running = undefined })
  }

  /** Deliveries stored and not yet acknowledged by the receiver. */
  pending (): number {
    return this.cursor.pending()
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.running
  }

  private async drain (): Promise<void> {
    while (!this.closed) {
      const due = this.cursor.due(this.batchSize)
      if (due.length === 0) return
      const outcome = await this.send(due.map((d) => d.delivery))
      if (outcome === 'retry') {
        this.retryLater()
        return
      }
      this.failures = 0
      this.cursor.advance(due[due.length - 1].seq)
    }
  }

  private retryLater (): void {
    if (this.closed) return
    const wait = backoffMs(this.failures++, this.backoff)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.kick()
    }, wait)
  }

  /** One request for `deliveries`; a refused one is split until the refused deliveries stand alone. */
  private async send (deliveries: Delivery[]): Promise<Outcome> {
    const series = await seriesOf(deliveries, this.options)
    if (series.length === 0) return 'sent'
    let response: Response
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
        body: new Uint8Array(encodeWriteRequest(series)),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (err) {
      this.options.log({ event: 'remote-write-failed', url: this.options.url, deliveries: deliveries.length, error: errorText(err) })
      return 'retry'
    }
    const text = (await response.text().catch(() => '')).trim().slice(0, 500)
    if (response.ok) return 'sent'
    if (response.status === 429 || (response.status >= 500 && !SAMPLE_REFUSED.test(text))) {
      this.options.log({ event: 'remote-write-failed', url: this.options.url, deliveries: deliveries.length, status: response.status, detail: text })
      return 'retry'
    }
    if (deliveries.length > 1) {
      const half = Math.ceil(deliveries.length / 2)
      for (const part of [deliveries.slice(0, half), deliveries.slice(half)]) {
        if (await this.send(part) === 'retry') return 'retry'
      }
      return 'sent'
    }
    this.options.log({ event: 'remote-write-refused', url: this.options.url, id: deliveries[0].id, vm: deliveries[0].vm, metric: deliveries[0].metric, status: response.status, detail: text })
    return 'sent'
  }
}

function errorText (err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause
  return cause?.code ?? (err as Error).message ?? String(err)
}
