import Database from 'better-sqlite3'

/** What the agent was storing when a write failed: the label of `fedvm_agent_storage_errors_total`. */
export type StorageOp = 'ingest' | 'window' | 'datapoints' | 'cursor' | 'outbox' | 'deadletter'

/** How often a storage that keeps failing is mentioned again in the log. */
const REMIND_EVERY_MS = 60_000

/** An error SQLite reported (a full disk, an I/O error, a read-only file, …): the agent refuses the write and retries, it never dies of one. */
export function isStorageError (err: unknown): err is InstanceType<typeof Database.SqliteError> {
  return err instanceof Database.SqliteError
}

/**
 * Whether the agent's state can be written: failed writes counted per operation, and up/down by
 * the latest write. The log says when writes start failing (with SQLite's reason), reminds once a
 * minute while they do, and says when they succeed again.
 */
export class StorageHealth {
  readonly errors = new Map<StorageOp, number>()
  up = true
  private failedSince = 0
  private lastLogged = 0

  constructor (private readonly log: (line: string) => void, private readonly now: () => number = Date.now) {}

  failed (op: StorageOp, err: InstanceType<typeof Database.SqliteError>): void {
    this.errors.set(op, (this.errors.get(op) ?? 0) + 1)
    const now = this.now()
    if (this.up) {
      this.up = false
      this.failedSince = now
      this.lastLogged = now
      this.log(`agent: storage: ${op} write failed (${err.code}: ${err.message}); refusing and retrying: the guest keeps rows not stored, the outbox keeps deliveries not sent`)
    } else if (now - this.lastLogged >= REMIND_EVERY_MS) {
      this.lastLogged = now
      this.log(`agent: storage: still failing for ${Math.round((now - this.failedSince) / 1000)} s (${op}: ${err.code}: ${err.message})`)
    }
  }

  succeeded (): void {
    if (this.up) return
    this.up = true
    this.log(`agent: storage: writes succeed again after ${Math.round((this.now() - this.failedSince) / 1000)} s`)
  }
}
