import type { Readable, Writable } from 'node:stream'
import { decodeFrame, encodeFrame, FEED_VERSION, LineSplitter, type RowFrame } from '../../protocol/kpi-feed/frames'
import type { CommittedRow, KpiStore } from '../store/kpi-store'
import { realTiming, type Timing } from '../timing'

const CATCH_UP_PAGE = 256
const STATS_INTERVAL_MS = 1000
/** Frames are held until the end of the event-loop turn (one write for a group commit's rows), or until this many bytes. */
const CORK_BYTES = 64 * 1024
/**
 * While rows arrive back to back, the stream is written at most once per this many ms: each write is
 * a system call here and a wake-up of the host (at 1,000 rows/s, half as many as one per row). The
 * first row after a quiet spell of this length still goes out at the end of its event-loop turn, so
 * an idle feed adds no delay and a busy one at most this much.
 */
export const COALESCE_MS = 2

/**
 * Serves the KPI feed on one byte stream. Nothing is sent until the host says `hello` with its
 * cursor (or `resume`: from the position hosts acknowledged); then rows after the cursor go
 * out in commit order: new commits straight from the store's commit events while the stream
 * keeps up, and from the tables (catch-up) after a reconnect or whenever the stream pushed back.
 * The host's `ack`s move the acknowledged position, which stays with the database (and the VM).
 */
export class FeedSession {
  private lastSent: bigint | null = null
  private blocked = false
  private readonly lines = new LineSplitter()
  private readonly unsubscribe: () => void
  private readonly statsTimer: NodeJS.Timeout
  private lastStats = ''
  /** Row frames not yet written (this event-loop turn's, or those of a busy window), written together by uncork(). */
  private corked: string[] = []
  private corkedBytes = 0
  /** When the stream was last written to (by uncork), on timing's clock. */
  private lastWriteAt = -Infinity

  constructor (
    private readonly store: KpiStore,
    input: Readable,
    private readonly output: Writable,
    private readonly onBadFrame: (reason: string) => void,
    /** When the held frames are written: the clock, and a timer for the rest of the window. */
    private readonly timing: Timing = realTiming(),
  ) {
    input.setEncoding('utf8')
    input.on('data', (chunk: string) => this.receive(chunk))
    output.on('drain', () => {
      this.blocked = false
      this.pump()
    })
    this.unsubscribe = store.onCommit((row) => this.onCommit(row))
    this.statsTimer = setInterval(() => this.sendStats(false), STATS_INTERVAL_MS)
    this.statsTimer.unref()
  }

  close (): void {
    this.unsubscribe()
    clearInterval(this.statsTimer)
    this.dropCorked()
  }

  /** Forget the cursor (a bad frame or a lost host): nothing more is sent until the next hello. */
  reset (): void {
    this.lastSent = null
    this.lines.reset()
    this.dropCorked()
  }

  private receive (chunk: string): void {
    try {
      this.lines.push(chunk, (line) => {
        const frame = decodeFrame(line)
        if (frame.t === 'ack') {
          // An ack for another database (the host still thinks of the one this replaced) is no position here.
          if (frame.epoch === this.store.epoch) this.store.acknowledge(BigInt(frame.seq))
          return
        }
        if (frame.t !== 'hello') throw new Error(`the host may only send hello or ack, not ${frame.t}`)
        this.lastSent = frame.resume === true ? this.acknowledged() : BigInt(frame.after)
        // Rows not yet written were for the cursor this hello replaces: the answer starts a new stream.
        this.dropCorked()
        this.sendStats(true, frame.id)
        this.pump()
      })
    } catch (err) {
      this.reset()
      this.onBadFrame((err as Error).message)
    }
  }

  private onCommit (row: CommittedRow): void {
    if (this.lastSent === null) return
    if (!this.blocked && row.seq === this.lastSent + 1n) this.send(row)
    else this.pump()
  }

  private pump (): void {
    while (this.lastSent !== null && !this.blocked) {
      const rows = this.store.rowsAfter(this.lastSent, CATCH_UP_PAGE)
      for (const row of rows) {
        if (this.blocked) break
        this.send(row)
      }
      if (rows.length < CATCH_UP_PAGE) return
    }
  }

  private send (row: CommittedRow): void {
    this.lastSent = row.seq
    const frame = encodeFrame(rowFrame(row))
    this.corked.push(frame)
    this.corkedBytes += frame.length
    if (this.corkedBytes >= CORK_BYTES) this.uncork()
    else if (this.corked.length === 1) this.scheduleUncork()
  }

  /** At the end of this turn after a quiet spell; else when COALESCE_MS have passed since the last write. */
  private scheduleUncork (): void {
    const wait = this.lastWriteAt + COALESCE_MS - this.timing.now()
    if (wait <= 0) setImmediate(this.uncork)
    else this.timing.after(wait, this.uncork)
  }

  /** Writes the held frames at once; a stream that pushes back stops the sending until 'drain'. */
  private readonly uncork = (): void => {
    if (this.corked.length === 0) return
    const data = this.corked.length === 1 ? this.corked[0] : this.corked.join('')
    this.corked = []
    this.corkedBytes = 0
    this.lastWriteAt = this.timing.now()
    if (!this.output.write(data)) this.blocked = true
  }

  private dropCorked (): void {
    this.corked = []
    this.corkedBytes = 0
  }

  /** `hello`: the id of the hello these stats answer (echoed so the host knows where this connection's frames start). */
  private sendStats (always: boolean, hello?: string): void {
    if (this.lastSent === null) return
    const { committed, refused } = this.store.stats
    const stats = encodeFrame({
      v: FEED_VERSION, t: 'stats', committed, refused, last: this.store.lastCommittedSeq.toString(), epoch: this.store.epoch, acked: this.acknowledged().toString(),
      ...(hello === undefined ? {} : { hello }),
    })
    if (!always && stats === this.lastStats) return
    this.lastStats = stats
    this.uncork() // the rows these stats count go first
    this.output.write(stats)
  }

  private acknowledged (): bigint {
    const { acknowledged, lastCommittedSeq } = this.store
    return acknowledged < lastCommittedSeq ? acknowledged : lastCommittedSeq
  }
}

function rowFrame (row: CommittedRow): RowFrame {
  const base = { v: FEED_VERSION, t: 'row', seq: row.seq.toString(), kpi: row.name, ts: row.ts } as const
  if (row.sealed) return { ...base, sealed: row.sealed.toString('base64') }
  // INTEGER values are bigint: encodeFrame sends those beyond ±2^53 exactly (as `big`), the others as numbers.
  return { ...base, cols: row.columns ?? [], vals: row.values ?? [] }
}
