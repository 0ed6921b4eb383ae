import type { Database as Db, Statement } from 'better-sqlite3'
import { requeueConditions, type RequeueChoice } from '../../protocol/requeue-conditions'

/** Why a receiver refused a delivery for good: what the dead-letter store keeps and the metric counts. */
export interface DeadLetterReason {
  /** The HTTP status of the refusal. */
  status: number
  /** The problem document's `code` (e.g. `bad-request`), else `http-STATUS`: the metric's `reason` label. */
  code: string
  /** The receiver's words (the field and what is wrong with it); never the delivery's payload. */
  detail: string
}

/**
 * Deliveries a receiver refused for good, set aside beside the outbox (`stateDir/agent.db`, table
 * `dead_letters`) so the deliveries behind them go on: each with its consumer, its body as it was
 * queued, when and why it was refused. The operator reads them with `fedvm agent dead-letters` and,
 * once the cause is fixed, moves them back with its `--requeue`.
 */
export const DEAD_LETTERS_DDL = `
CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY, consumer TEXT NOT NULL, id TEXT NOT NULL, vm TEXT,
  body TEXT NOT NULL, refused_at INTEGER NOT NULL, status INTEGER NOT NULL, code TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (refused_at);
`

/** How much the store keeps: the oldest entries go first once either bound is passed (each removal is logged). */
export interface DeadLetterLimits {
  maxRows: number
  maxAgeMs: number
}

export const DEFAULT_DEAD_LETTER_LIMITS: DeadLetterLimits = { maxRows: 10_000, maxAgeMs: 7 * 24 * 3600_000 }

/**
 * How long a delivery refused for where its VM is (the site does not place the VM on this host)
 * is retried, counted from when it was queued, before it is set aside: twice a site's default
 * tombstone (24 h), after which a site no longer hears a VM that left.
 */
export const DEFAULT_UNPLACED_AFTER_MS = 48 * 3600_000

/**
 * How long a delivery the site refuses for this host's signature (401: it does not know the host
 * or its key yet, or the clocks disagree) is retried, counted from when it was queued, before it is
 * set aside: as long as unplaced ones, time for an operator to add the host's key at the site.
 */
export const DEFAULT_UNAUTHENTICATED_AFTER_MS = 48 * 3600_000

/** A delivery set aside, as the CLI prints it. */
export interface DeadLetter {
  seq: number
  consumer: string
  id: string
  vm: string | null
  refusedAt: number
  status: number
  code: string
  detail: string
  body: string
}

export interface DeadLetterEntry {
  /** The delivery as the outbox held it. */
  delivery: { id: string, vm: string | null, body: string }
  reason: DeadLetterReason
}

/** The statements the agent's store writes the table with (inside its own transactions). */
export class DeadLetterTable {
  private readonly insert: Statement
  private readonly dropOld: Statement
  private readonly dropOver: Statement
  private readonly count: Statement

  constructor (db: Db, private limits: DeadLetterLimits) {
    db.exec(DEAD_LETTERS_DDL)
    this.insert = db.prepare('INSERT INTO dead_letters (consumer, id, vm, body, refused_at, status, code, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    this.dropOld = db.prepare('DELETE FROM dead_letters WHERE refused_at < ?')
    this.dropOver = db.prepare('DELETE FROM dead_letters WHERE seq IN (SELECT seq FROM dead_letters ORDER BY seq DESC LIMIT -1 OFFSET ?)')
    this.count = db.prepare('SELECT count(*) FROM dead_letters WHERE consumer = ?').pluck()
  }

  /** Inside a transaction: adds the entries, then drops what is past the limits; returns how many old entries were dropped. */
  add (consumer: string, entries: readonly DeadLetterEntry[], now: number): number {
    for (const { delivery: d, reason: r } of entries) this.insert.run(consumer, d.id, d.vm, d.body, now, r.status, r.code, r.detail)
    return this.dropOld.run(now - this.limits.maxAgeMs).changes + this.dropOver.run(this.limits.maxRows).changes
  }

  length (consumer: string): number {
    return this.count.get(consumer) as number
  }

  /**
   * Inside a transaction: new bounds (a reloaded config) hold from now on, and what is already past
   * them is dropped at once rather than at the next entry; returns how many were dropped.
   */
  setLimits (limits: DeadLetterLimits, now: number): number {
    this.limits = { ...limits }
    return this.dropOld.run(now - limits.maxAgeMs).changes + this.dropOver.run(limits.maxRows).changes
  }
}

/** The dead-letter store of an agent's database, oldest first (read-only: the agent may be running beside it). */
export function readDeadLetters (db: Db, options: { consumer?: string, limit: number }): DeadLetter[] {
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'").get() !== undefined
  if (!hasTable) return []
  const where = options.consumer === undefined ? '' : 'WHERE consumer = @consumer'
  return db.prepare(`SELECT seq, consumer, id, vm, refused_at AS refusedAt, status, code, detail, body FROM dead_letters ${where} ORDER BY seq LIMIT @limit`)
    .all({ limit: options.limit, ...(options.consumer === undefined ? {} : { consumer: options.consumer }) }) as DeadLetter[]
}

/** Which dead letters to put back: these seqs (else every entry), narrowed to the given consumers and reason. */
export interface RequeueSelection extends RequeueChoice {
  /** Only entries of these consumers (the config's: an entry of a consumer the agent no longer has would wait forever). */
  consumers: readonly string[]
}

/**
 * Moves the selected dead letters back to the end of the outbox, in one write transaction: a
 * delivery is in exactly one of the two tables before and after, whatever happens in between.
 * Each is queued afresh (no attempts, due at once, `queued_at` now: the bounds on retrying a
 * refusal count from the requeue). The running agent's idle poll sees the rows within a second.
 * Returns the entries moved, oldest first.
 */
export function requeueDeadLetters (db: Db, selection: RequeueSelection, now: number): DeadLetter[] {
  const { where, params } = requeueConditions('consumer', selection.consumers, selection)
  const select = db.prepare(`SELECT seq, consumer, id, vm, refused_at AS refusedAt, status, code, detail, body FROM dead_letters WHERE ${where} ORDER BY seq`)
  // The outbox's columns as agent-store.ts declares them; attempts and next_attempt take their defaults.
  const enqueue = db.prepare('INSERT INTO outbox (consumer, id, body, vm, queued_at) VALUES (?, ?, ?, ?, ?)')
  const remove = db.prepare('DELETE FROM dead_letters WHERE seq = ?')
  return db.transaction(() => {
    const letters = select.all(params) as DeadLetter[]
    for (const l of letters) {
      enqueue.run(l.consumer, l.id, l.body, l.vm, now)
      remove.run(l.seq)
    }
    return letters
  }).immediate()
}
