import type { Database } from 'better-sqlite3'
import { realTiming, type Timing } from '../timing'

export interface WalCheckpointOptions {
  /** Checkpoint once no commit came for this long. */
  idleMs?: number
  /** Checkpoint after this many commit transactions even while busy (bounds the WAL: ~2 pages each). */
  maxCommits?: number
  /** When to checkpoint: the clock, and the idle timer (unref'd by default: it never holds the process open). */
  timing?: Timing
}

/**
 * Copies the WAL back into the database file, on the thread that commits and between commits.
 * SQLite starts the WAL over only when a checkpoint has copied all of it and the next commit
 * begins; a checkpoint on another thread runs while commits keep appending, never catches up under
 * a steady rate, and the WAL grows without end (8 MB/s at 1,000 closes/s). Here a checkpoint runs
 * once commits pause for `idleMs`, or after `maxCommits` transactions, after their answers are out;
 * it fsyncs the WAL and the database (milliseconds), so closes arriving meanwhile wait that long.
 */
export class WalCheckpoints {
  private commitsSince = 0
  private lastCommitAt = 0
  private idleTimerArmed = false
  private scheduled = false
  private stopped = false
  private readonly idleMs: number
  private readonly maxCommits: number
  private readonly timing: Timing

  constructor (private readonly db: Database, private readonly log: (line: string) => void, options: WalCheckpointOptions = {}) {
    this.idleMs = options.idleMs ?? 100
    this.maxCommits = options.maxCommits ?? 1000
    this.timing = options.timing ?? realTiming({ unref: true })
  }

  /** A commit transaction ended (its promises are settled, their answers not yet sent). */
  committed (): void {
    if (this.stopped) return
    this.commitsSince++
    this.lastCommitAt = this.timing.now()
    if (this.commitsSince >= this.maxCommits && !this.scheduled) {
      this.scheduled = true
      // After this turn's answers: the closes that these commits answer are not held up by it.
      setImmediate(() => {
        this.scheduled = false
        this.checkpoint()
      })
    }
    if (!this.idleTimerArmed) this.armIdleTimer(this.idleMs)
  }

  /** No more checkpoints (the store's close() does the last one). */
  stop (): void {
    this.stopped = true
  }

  private armIdleTimer (ms: number): void {
    this.idleTimerArmed = true
    this.timing.after(ms, () => {
      this.idleTimerArmed = false
      if (this.stopped || this.commitsSince === 0) return
      const quietFor = this.timing.now() - this.lastCommitAt
      if (quietFor < this.idleMs) return this.armIdleTimer(this.idleMs - quietFor)
      this.checkpoint()
    })
  }

  private checkpoint (): void {
    if (this.stopped || this.commitsSince === 0) return
    this.commitsSince = 0
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)')
    } catch (err) {
      // The WAL stays as it is (still durable); the next commit or pause tries again.
      this.log(`checkpoint failed (will retry): ${err instanceof Error ? err.message : String(err)}`)
    }
  }
}
