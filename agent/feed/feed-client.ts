import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { decodeFrame, encodeFrame, FEED_VERSION, LineSplitter, type RowFrame, type StatsFrame } from '../../protocol/kpi-feed/frames'

export interface FeedClientOptions {
  /** `unix:PATH` */
  endpoint: string
  /** The persisted cursor: the last row whose effects are durable. */
  cursor: () => bigint
  /** True when this host has no cursor for the VM (it just arrived): hello with `resume`, "from the acknowledged position". */
  noCursor: () => boolean
  /** Rows after the cursor, in order, a batch per chunk read; must make them durable with the cursor before returning. */
  onRows: (rows: RowFrame[]) => void
  /** Rows as they arrive, before the batch that stores them (e.g. for a live view that must not wait for the batch); each row once per connection. */
  onArrived?: (rows: readonly RowFrame[]) => void
  /**
   * The guest's stats (sent first after every hello); returning true drops the connection to say
   * hello again with the (moved) cursor. `streamingFrom`: for the first stats after a hello, the
   * row the guest streams after on this connection.
   */
  onStats: (stats: StatsFrame, streamingFrom?: bigint) => boolean
  onConnected: (connected: boolean) => void
  log: (line: string) => void
}

const MIN_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 5000
/**
 * Group commit: transactions (each a durable cursor move, an ack and an outbox kick) start at least
 * this far apart. A row arriving while idle is stored in the same event-loop turn; under load each
 * transaction takes every row that arrived since the previous one, so batches grow with the rate
 * and the number of commits a second stays at most 1000 / BATCH_SPACING_MS. At 1,000 rows/s a
 * fixed 2 ms linger made ~400 commits a second of 2-3 rows, each with its WAL writes and an ack:
 * most of the agent's system calls.
 */
const BATCH_SPACING_MS = 10
const MAX_BATCH = 512
/**
 * A hello unanswered this long is said again: through a virtio-serial port, a hello that arrives
 * while no guest process has the port open (the VM still booting, guestfs restarting) may be lost.
 */
const HELLO_RETRY_MS = 5000

/**
 * Follows one VM's KPI feed: on every (re)connect it says hello with the persisted cursor, then
 * takes rows in order. Rows at or below the cursor are repeats (after a reconnect) and dropped; a
 * gap or a malformed frame closes the connection with a logged reason, and it reconnects. After
 * each durable batch it acks the last row to a guest that takes acks (its stats say `acked`), so
 * the guest knows where the next host (after a migration) continues.
 */
export class FeedClient {
  private socket?: Socket
  private stopped = false
  private backoffMs = MIN_BACKOFF_MS
  private retryTimer?: NodeJS.Timeout
  private pending: RowFrame[] = []
  private batchTimer?: NodeJS.Timeout
  private batchImmediate?: NodeJS.Immediate
  private lastFlush = Number.NEGATIVE_INFINITY
  /** The guest database's epoch, when the guest takes acks; undefined until its stats say so. */
  private ackEpoch?: string
  /** The latest batch could not be stored (a full disk): reconnects keep backing off instead of asking for it at once. */
  private storeFailing = false

  constructor (private readonly options: FeedClientOptions) {}

  start (): void {
    this.connect()
  }

  /** Stores what arrived, acks it, and closes the connection after the ack went out. */
  stop (): void {
    this.stopped = true
    clearTimeout(this.retryTimer)
    this.flush()
    const socket = this.socket
    if (!socket) return
    socket.end()
    setTimeout(() => socket.destroy(), 1000).unref()
  }

  private connect (): void {
    const path = this.options.endpoint.slice('unix:'.length)
    const socket = connect(path)
    this.socket = socket
    this.ackEpoch = undefined
    const lines = new LineSplitter()
    // The first line may be the partial tail of a frame written for an earlier connection through a
    // virtio-serial port (the guest cannot see the host disconnect): skipped, once. Any other bad
    // line is an error, so a guest that speaks another version is reported, not silently ignored.
    let firstLine = true
    /** What this connection's hello asked for (`resume`: from the guest's acknowledged position); null once its stats came. */
    let hello: { after: bigint, resume: boolean, id: string } | null = null
    socket.setEncoding('utf8')
    let helloTimer: NodeJS.Timeout | undefined
    const sayHello = (): void => {
      const resume = this.options.noCursor()
      hello = { after: resume ? 0n : this.options.cursor(), resume, id: randomBytes(6).toString('hex') }
      socket.write(encodeFrame({ v: FEED_VERSION, t: 'hello', after: hello.after.toString(), ...(resume ? { resume } : {}), id: hello.id }))
      helloTimer = setTimeout(sayHello, HELLO_RETRY_MS)
    }
    socket.on('connect', () => {
      if (!this.storeFailing) this.backoffMs = MIN_BACKOFF_MS // a guest that restarted is followed again at once
      this.options.onConnected(true)
      sayHello()
    })
    let expected = 0n
    socket.on('data', (chunk: string) => {
      if (this.stopped) return
      if (expected === 0n) expected = this.options.cursor() + 1n
      const pendingBefore = this.pending.length
      try {
        lines.push(chunk, (line) => {
          let frame
          try {
            frame = decodeFrame(line)
          } catch (err) {
            if (!firstLine) throw err
            this.options.log(`feed ${this.options.endpoint}: skipped a partial first line (${(err as Error).message})`)
            return
          } finally {
            firstLine = false
          }
          if (frame.t === 'stats') {
            // A guest that echoes hello ids (it reports `acked`) answers this hello with stats naming it:
            // stats before those were written for an earlier connection that the port still held.
            if (hello !== null && frame.acked !== undefined && frame.hello !== hello.id) return
            const first = hello
            hello = null
            clearTimeout(helloTimer)
            // A guest that knows `resume` (it reports `acked`) streams from its acknowledged position.
            const streamingFrom = first === null ? undefined : first.resume && frame.acked !== undefined ? BigInt(frame.acked) : first.after
            if (this.options.onStats(frame, streamingFrom)) {
              this.pending = []
              throw new Error('the cursor moved to follow the guest database: saying hello again')
            }
            this.ackEpoch = frame.acked === undefined ? undefined : frame.epoch
            // The rows that follow the first stats start after the (maybe just adopted) cursor.
            if (first !== null) expected = this.options.cursor() + 1n
            return
          }
          if (frame.t !== 'row') throw new Error(`the guest may not send ${frame.t}`)
          // The guest answers a hello with stats first: a row before them was written for an earlier
          // connection through a virtio-serial port (e.g. before the VM was saved on another host), and
          // the guest sends it again after the stats, since this hello restarted it from the cursor.
          if (hello !== null) return
          const seq = BigInt(frame.seq)
          if (seq < expected) return
          if (seq > expected) throw new Error(`gap in the feed: expected row ${expected}, got ${seq}`)
          this.pending.push(frame)
          expected++
        })
      } catch (err) {
        this.options.log(`feed ${this.options.endpoint}: closing after a bad frame: ${(err as Error).message}`)
        socket.destroy()
      }
      if (this.pending.length > pendingBefore) this.options.onArrived?.(this.pending.slice(pendingBefore))
      if (this.pending.length >= MAX_BATCH) this.flush()
      else if (this.pending.length > 0) this.scheduleFlush()
    })
    socket.on('error', (err) => {
      if (this.backoffMs === MIN_BACKOFF_MS) this.options.log(`feed ${this.options.endpoint}: ${err.message}`)
    })
    socket.on('close', () => {
      clearTimeout(helloTimer)
      this.flush() // before reconnecting: the next hello sends the cursor these rows moved
      this.options.onConnected(false)
      if (this.stopped) return
      this.retryTimer = setTimeout(() => this.connect(), this.backoffMs)
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS)
    })
  }

  /** Stores the pending rows once the spacing since the previous transaction allows: later in this turn when idle. */
  private scheduleFlush (): void {
    if (this.batchTimer !== undefined || this.batchImmediate !== undefined) return
    const wait = this.lastFlush + BATCH_SPACING_MS - performance.now()
    // setImmediate runs after this turn's other socket reads: rows that came together share the transaction.
    if (wait <= 0) this.batchImmediate = setImmediate(() => this.flush())
    else this.batchTimer = setTimeout(() => this.flush(), wait)
  }

  private flush (): void {
    clearTimeout(this.batchTimer)
    clearImmediate(this.batchImmediate)
    this.batchTimer = undefined
    this.batchImmediate = undefined
    const rows = this.pending
    if (rows.length === 0) return
    this.pending = []
    this.lastFlush = performance.now()
    try {
      this.options.onRows(rows)
      this.storeFailing = false
      this.backoffMs = MIN_BACKOFF_MS
      const socket = this.socket
      if (this.ackEpoch !== undefined && socket && socket.writable) {
        socket.write(encodeFrame({ v: FEED_VERSION, t: 'ack', seq: rows[rows.length - 1].seq, epoch: this.ackEpoch }))
      }
    } catch (err) {
      // Nothing of the batch was kept (one transaction): reconnecting asks for it again.
      this.options.log(`feed ${this.options.endpoint}: could not store rows: ${(err as Error).message}`)
      this.storeFailing = true
      this.socket?.destroy()
    }
  }
}
