import type { Database as Db, Statement } from 'better-sqlite3'

/** At most this long between an ack and its row in `_fedvm_meta` when no commit carries it sooner. */
const PERSIST_AFTER_MS = 1000

/**
 * The highest row a host acknowledged (the KPI feed's `ack`), kept in memory (which a saved and
 * restored VM carries) and in `_fedvm_meta` under `acked` (for a cold shutdown): a host that has
 * no cursor of its own, e.g. the one a VM migrated to, continues from here. Stored lazily (with
 * a commit at most once a second, else by a timer within a second, or at close): a crash can only
 * make it older, which repeats rows (their delivery ids let them be dropped) but never skips one.
 * Not with every commit: while a host acks every few milliseconds, that would add a page to each
 * commit's WAL write.
 */
export class AckedPosition {
  private seq: bigint
  private stored: bigint
  private timer?: NodeJS.Timeout
  /** When the position was last written (Date.now()), by either path. */
  private storedAt = 0
  private readonly save: Statement

  constructor (private readonly db: Db) {
    const value = db.prepare("SELECT value FROM _fedvm_meta WHERE key = 'acked'").pluck().get() as string | undefined
    this.seq = this.stored = value === undefined ? 0n : BigInt(value)
    this.save = db.prepare("INSERT INTO _fedvm_meta (key, value) VALUES ('acked', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
  }

  get value (): bigint {
    return this.seq
  }

  /** Moves forward only: an older ack (a slower host, a repeat) changes nothing. */
  advance (seq: bigint): void {
    if (seq <= this.seq) return
    this.seq = seq
    if (!this.timer) {
      this.timer = setTimeout(() => this.persist(), PERSIST_AFTER_MS)
      this.timer.unref()
    }
  }

  /** Inside a commit's transaction (where it costs no transaction of its own): writes the position if it moved and was last written a second ago or more. */
  persistIfDue (now = Date.now()): void {
    if (now - this.storedAt >= PERSIST_AFTER_MS) this.persist()
  }

  /** Writes the position if it moved. */
  persist (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.seq === this.stored) return
    this.save.run(this.seq.toString())
    this.stored = this.seq
    this.storedAt = Date.now()
  }
}
