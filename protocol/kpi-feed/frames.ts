/**
 * The KPI feed's wire format (DESIGN.md Contract 2): newline-delimited JSON frames, each with a
 * version `v`. The host sends `hello` (on every (re)connect, with the cursor it has persisted, or,
 * having none, `resume` to mean "from the last row a host acknowledged"); the guest answers with
 * `stats`, then `row` frames in commit order from that cursor on, then follows new commits, and
 * sends `stats` now and then. The host sends `ack` once a batch's effects are durable, so the guest
 * knows how far hosts got (its acknowledged position travels with the VM when it migrates).
 * Sequences travel as decimal strings (they are 64-bit).
 *
 * Still version 1: `resume`, `id`, `acked` and `hello` are optional fields an older peer ignores
 * (an older guest serves a resuming hello from `after`, i.e. "0": every row again, with the same
 * delivery ids), and the host sends `ack` only to a guest whose stats carry `acked`.
 */
export const FEED_VERSION = 1
/** A sealed KPI is at most 1 MiB: base64 plus the frame fits well under this. */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024

/**
 * A KPI value as a row carries it: INTEGER and REAL as number, TEXT as string, NULL as null; an
 * INTEGER beyond ±2^53 (a JSON number would round it) as bigint, exact. On the wire such an integer
 * is a decimal string in `vals` and its position is listed in `big` (an older host reads it as text
 * and makes no sample of it, rather than a wrong number).
 */
export type FeedValue = number | bigint | string | null

/**
 * `resume: true`: from the guest's acknowledged position (a host with no cursor for this VM, e.g.
 * after a migration; `after` is then "0", for guests that predate it). `id`: echoed as
 * `stats.hello` in the answer, so the host can tell it from frames written for an earlier
 * connection that a virtio-serial port still held.
 */
export interface HelloFrame { v: 1, t: 'hello', after: string, resume?: boolean, id?: string }
/** The host made rows up to `seq` of the database `epoch` durable; a guest ignores an ack for another epoch. */
export interface AckFrame { v: 1, t: 'ack', seq: string, epoch: string }
export interface RowFrame {
  v: 1
  t: 'row'
  seq: string
  kpi: string
  ts: number
  /** Unencrypted rows: column names and values in the same order. */
  cols?: string[]
  vals?: FeedValue[]
  /** On the wire only: the positions in `vals` of integers beyond ±2^53, sent as decimal strings (decoded into bigint). */
  big?: number[]
  /** Encrypted rows: the sealed bytes as base64, opaque to the host. */
  sealed?: string
}
/**
 * The guest's counters, its last committed sequence, and its database's epoch: sent first after
 * every hello, so a host whose cursor belongs to another epoch (a replaced or restored database)
 * starts over instead of skipping rows. `acked` (guests that understand `ack` and `resume`): the
 * highest row any host acknowledged; a host whose cursor is behind it (another host took those
 * rows before the VM migrated here) continues from it. `hello`: the id of the hello it answers.
 */
export interface StatsFrame { v: 1, t: 'stats', committed: number, refused: number, last: string, epoch: string, acked?: string, hello?: string }
export type FeedFrame = HelloFrame | RowFrame | StatsFrame | AckFrame

export class FeedFrameError extends Error {
  readonly code = 'FEED_BAD_FRAME'
}

export function encodeFrame (frame: FeedFrame): string {
  if (frame.t === 'row' && frame.vals !== undefined && frame.vals.some((value) => typeof value === 'bigint')) frame = bigOnWire(frame)
  return JSON.stringify(frame) + '\n'
}

/** Writes a row's bigint values as decimal strings listed in `big`; integers that a JSON number carries exactly go as numbers. */
function bigOnWire (frame: RowFrame): RowFrame {
  const big: number[] = []
  const vals = frame.vals!.map((value, i) => {
    if (typeof value !== 'bigint') return value
    if (value >= MIN_SAFE && value <= MAX_SAFE) return Number(value)
    big.push(i)
    return value.toString()
  })
  return big.length > 0 ? { ...frame, vals, big } : { ...frame, vals }
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const INT64_TEXT = /^-?[0-9]{1,19}$/
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const SEQ = /^(0|[1-9][0-9]{0,19})$/
const EPOCH = /^[0-9a-f]{8,64}$/
const HELLO_ID = /^[A-Za-z0-9-]{1,64}$/

/** Parses and checks one line; throws FeedFrameError naming what is wrong. */
export function decodeFrame (line: string): FeedFrame {
  let frame: unknown
  try {
    frame = JSON.parse(line)
  } catch (err) {
    throw new FeedFrameError(`frame is not JSON: ${(err as Error).message}`)
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) throw new FeedFrameError('frame is not an object')
  const f = frame as Record<string, unknown>
  if (f.v !== FEED_VERSION) throw new FeedFrameError(`unsupported frame version ${JSON.stringify(f.v)} (this side speaks ${FEED_VERSION})`)
  switch (f.t) {
    case 'hello':
      if (typeof f.after !== 'string' || !SEQ.test(f.after)) throw new FeedFrameError('hello.after must be a decimal sequence string')
      if (f.resume !== undefined && typeof f.resume !== 'boolean') throw new FeedFrameError('hello.resume must be a boolean')
      if (f.id !== undefined && (typeof f.id !== 'string' || !HELLO_ID.test(f.id))) throw new FeedFrameError('hello.id must be 1 to 64 letters, digits or dashes')
      return f as unknown as HelloFrame
    case 'ack':
      if (typeof f.seq !== 'string' || !SEQ.test(f.seq)) throw new FeedFrameError('ack.seq must be a decimal sequence string')
      if (typeof f.epoch !== 'string' || !EPOCH.test(f.epoch)) throw new FeedFrameError('ack.epoch must be a hex string')
      return f as unknown as AckFrame
    case 'row':
      return checkRow(f)
    case 'stats':
      if (!Number.isSafeInteger(f.committed) || !Number.isSafeInteger(f.refused)) throw new FeedFrameError('stats.committed and stats.refused must be integers')
      if (typeof f.last !== 'string' || !SEQ.test(f.last)) throw new FeedFrameError('stats.last must be a decimal sequence string')
      if (typeof f.epoch !== 'string' || !EPOCH.test(f.epoch)) throw new FeedFrameError('stats.epoch must be a hex string')
      if (f.acked !== undefined && (typeof f.acked !== 'string' || !SEQ.test(f.acked))) throw new FeedFrameError('stats.acked must be a decimal sequence string')
      if (f.hello !== undefined && (typeof f.hello !== 'string' || !HELLO_ID.test(f.hello))) throw new FeedFrameError('stats.hello must be a hello id')
      return f as unknown as StatsFrame
    default:
      throw new FeedFrameError(`unknown frame type ${JSON.stringify(f.t)}`)
  }
}

function checkRow (f: Record<string, unknown>): RowFrame {
  if (typeof f.seq !== 'string' || !SEQ.test(f.seq)) throw new FeedFrameError('row.seq must be a decimal sequence string')
  if (typeof f.kpi !== 'string' || f.kpi === '') throw new FeedFrameError('row.kpi must be a non-empty string')
  if (!Number.isSafeInteger(f.ts)) throw new FeedFrameError('row.ts must be an integer (ms)')
  if (f.sealed !== undefined) {
    if (typeof f.sealed !== 'string' || f.cols !== undefined || f.vals !== undefined) throw new FeedFrameError('row.sealed must be a base64 string and stand alone')
    return f as unknown as RowFrame
  }
  const { cols, vals } = f
  if (!Array.isArray(cols) || !cols.every((c) => typeof c === 'string')) throw new FeedFrameError('row.cols must be an array of strings')
  if (!Array.isArray(vals) || vals.length !== cols.length) throw new FeedFrameError('row.vals must be an array as long as row.cols')
  if (!vals.every((v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) {
    throw new FeedFrameError('row.vals holds numbers, strings or null only')
  }
  if (f.big !== undefined) {
    decodeBig(f.big, vals)
    delete f.big
  }
  return f as unknown as RowFrame
}

/** Turns the values `big` lists back into exact bigints (in place); throws naming what is wrong. */
function decodeBig (big: unknown, vals: unknown[]): void {
  if (!Array.isArray(big)) throw new FeedFrameError('row.big must be an array of positions in row.vals')
  let previous = -1
  for (const at of big) {
    if (!Number.isSafeInteger(at) || at <= previous || at >= vals.length) throw new FeedFrameError('row.big must list positions in row.vals, each once, in increasing order')
    previous = at
    const text = vals[at]
    const value = typeof text === 'string' && INT64_TEXT.test(text) ? BigInt(text) : undefined
    if (value === undefined || value < INT64_MIN || value > INT64_MAX) throw new FeedFrameError(`row.vals[${at}] is listed in row.big but is not a 64-bit integer in decimal`)
    vals[at] = value
  }
}

/**
 * Splits a byte stream into lines. A line longer than MAX_FRAME_BYTES is an error (the peer is
 * broken or hostile); the caller closes that connection.
 */
export class LineSplitter {
  private pending = ''

  push (chunk: string, onLine: (line: string) => void): void {
    this.pending += chunk
    let newline: number
    while ((newline = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, newline)
      this.pending = this.pending.slice(newline + 1)
      if (line !== '') onLine(line)
    }
    if (this.pending.length > MAX_FRAME_BYTES) throw new FeedFrameError(`frame longer than ${MAX_FRAME_BYTES} bytes`)
  }

  reset (): void {
    this.pending = ''
  }
}
