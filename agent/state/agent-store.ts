import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import type { Sample } from '../processing/window'
import type { AgentDelivery as Delivery } from '../../protocol/relay/delivery'
import { stringifyExact } from '../../protocol/exact-json'
import { isStorageError, StorageHealth, type StorageOp } from './storage-health'
import { DEFAULT_DEAD_LETTER_LIMITS, DeadLetterTable, type DeadLetterEntry, type DeadLetterLimits } from './dead-letters'

/** How long acknowledged outbox rows wait for a transaction to ride along with before they get their own. */
const ACK_LINGER_MS = 100

const DDL = `
CREATE TABLE IF NOT EXISTS feed_cursors (vm TEXT PRIMARY KEY, seq TEXT NOT NULL, epoch TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS window_samples (vm TEXT NOT NULL, spec TEXT NOT NULL, ts INTEGER NOT NULL, value);
CREATE INDEX IF NOT EXISTS window_samples_by_spec ON window_samples (vm, spec);
CREATE TABLE IF NOT EXISTS latest_values (vm TEXT NOT NULL, metric TEXT NOT NULL, ts INTEGER NOT NULL, value,
  PRIMARY KEY (vm, metric)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, consumer TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0, vm TEXT, queued_at INTEGER);
`

/** A delivery waiting in the outbox for one consumer (`seq` is its place in the queue). */
export interface QueuedDelivery {
  seq: number
  id: string
  body: string
  attempts: number
  /** The delivery's VM, so a transport routes it without decoding the body (null for rows queued before the column existed). */
  vm: string | null
  /** When it was queued (ms; null for rows queued before the column existed). */
  queuedAt: number | null
}

/**
 * The agent's durable state in `stateDir/agent.db`: each VM's feed cursor, the samples of open
 * delivery windows, the latest value of each sampled metric, and the outbox. A batch of feed rows
 * changes all of them in one transaction, so a crash at any moment neither loses nor repeats a row.
 */
export class AgentStore {
  private readonly db: Db
  private readonly statements: Record<string, Statement>
  /** Cursors are read on every feed chunk: kept here, written through. */
  private readonly cursors = new Map<string, bigint>()
  private readonly epochs = new Map<string, string | undefined>()
  /**
   * Outbox rows whose delivery was acknowledged, not yet deleted: the deletes ride along with the
   * next transaction (a batch of feed rows, usually within milliseconds) instead of costing one of
   * their own per send. Lost in a crash, they are sent again, which delivery ids make harmless.
   */
  private acked: number[] = []
  private ackTimer?: NodeJS.Timeout
  /** What runs once the current transaction commits (dropped if it rolls back). */
  private committed: Array<() => void> = []
  readonly health: StorageHealth
  private readonly deadLetters: DeadLetterTable

  constructor (stateDir: string, log: (line: string) => void = () => {}, deadLetterLimits: DeadLetterLimits = DEFAULT_DEAD_LETTER_LIMITS) {
    this.health = new StorageHealth(log)
    mkdirSync(stateDir, { recursive: true, mode: 0o750 })
    this.db = new Database(join(stateDir, 'agent.db'))
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(DDL)
    // An outbox from before `vm` and `queued_at` were kept beside each delivery gains the columns (its old rows stay NULL).
    const columns = (this.db.pragma('table_info(outbox)') as Array<{ name: string }>).map((c) => c.name)
    if (!columns.includes('vm')) this.db.exec('ALTER TABLE outbox ADD COLUMN vm TEXT')
    if (!columns.includes('queued_at')) this.db.exec('ALTER TABLE outbox ADD COLUMN queued_at INTEGER')
    this.deadLetters = new DeadLetterTable(this.db, deadLetterLimits)
    this.statements = {
      cursor: this.db.prepare('SELECT seq FROM feed_cursors WHERE vm = ?').pluck(),
      epoch: this.db.prepare('SELECT epoch FROM feed_cursors WHERE vm = ?').pluck(),
      setEpoch: this.db.prepare(`INSERT INTO feed_cursors (vm, seq, epoch) VALUES (?, ?, ?)
        ON CONFLICT (vm) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch`),
      setCursor: this.db.prepare('INSERT INTO feed_cursors (vm, seq) VALUES (?, ?) ON CONFLICT (vm) DO UPDATE SET seq = excluded.seq'),
      addSample: this.db.prepare('INSERT INTO window_samples (vm, spec, ts, value) VALUES (?, ?, ?, ?)'),
      windowSamples: this.db.prepare('SELECT ts, value FROM window_samples WHERE vm = ? AND spec = ? ORDER BY rowid').safeIntegers(),
      clearWindow: this.db.prepare('DELETE FROM window_samples WHERE vm = ? AND spec = ?'),
      setLatest: this.db.prepare(`INSERT INTO latest_values (vm, metric, ts, value) VALUES (?, ?, ?, ?)
        ON CONFLICT (vm, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value`),
      latest: this.db.prepare('SELECT ts, value FROM latest_values WHERE vm = ? AND metric = ?').safeIntegers(),
      enqueue: this.db.prepare('INSERT INTO outbox (consumer, id, body, vm, queued_at) VALUES (?, ?, ?, ?, ?)'),
      due: this.db.prepare('SELECT seq, id, body, attempts, vm, queued_at AS queuedAt FROM outbox WHERE consumer = ? AND next_attempt <= ? ORDER BY seq LIMIT ?'),
      ack: this.db.prepare('DELETE FROM outbox WHERE seq = ?'),
      retry: this.db.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt = ? WHERE seq = ?'),
      queueLength: this.db.prepare('SELECT count(*) FROM outbox WHERE consumer = ?').pluck(),
    }
  }

  /**
   * Runs fn in one transaction (nested calls join the outer one). A write SQLite refuses (a full
   * disk, an I/O error) rolls it all back, is counted under `op` in `health`, and is thrown on:
   * the caller keeps its input and tries again later.
   */
  transaction<T> (fn: () => T, op: StorageOp = 'ingest'): T {
    if (this.db.inTransaction) return fn()
    this.committed = []
    let result: T
    try {
      result = this.db.transaction(() => {
        this.deleteAcked()
        return fn()
      })()
    } catch (err) {
      this.committed = []
      if (isStorageError(err)) this.health.failed(op, err)
      throw err
    }
    this.health.succeeded()
    const hooks = this.committed
    this.committed = []
    for (const hook of hooks) hook()
    return result
  }

  /** Runs fn once the current transaction commits, never if it rolls back (at once outside a transaction). */
  afterCommit (fn: () => void): void {
    if (this.db.inTransaction) this.committed.push(fn)
    else fn()
  }

  cursor (vm: string): bigint {
    let cursor = this.cursors.get(vm)
    if (cursor === undefined) {
      const seq = this.statements.cursor.get(vm) as string | undefined
      cursor = seq === undefined ? 0n : BigInt(seq)
      this.cursors.set(vm, cursor)
    }
    return cursor
  }

  /** The epoch (guest database identity) the cursor belongs to; undefined before the first one is seen. */
  cursorEpoch (vm: string): string | undefined {
    if (!this.epochs.has(vm)) this.epochs.set(vm, (this.statements.epoch.get(vm) as string | null | undefined) ?? undefined)
    return this.epochs.get(vm)
  }

  /** Moves the cursor to `seq` of the given epoch (a new guest database, or one that went back in time). */
  restartCursor (vm: string, epoch: string, seq: bigint): void {
    this.transaction(() => {
      this.statements.setEpoch.run(vm, seq.toString(), epoch)
      this.afterCommit(() => {
        this.cursors.set(vm, seq)
        this.epochs.set(vm, epoch)
      })
    }, 'cursor')
  }

  /** Call inside the transaction that stores the rows' effects; the cached value follows only if it commits. */
  setCursor (vm: string, seq: bigint): void {
    this.statements.setCursor.run(vm, seq.toString())
    this.afterCommit(() => this.cursors.set(vm, seq))
  }

  addWindowSample (vm: string, spec: string, sample: Sample): void {
    this.statements.addSample.run(vm, spec, sample.ts, sample.value)
  }

  /** The window's samples, removed from the store (the caller's transaction makes the delivery at once). */
  takeWindow (vm: string, spec: string): Sample[] {
    const samples = (this.statements.windowSamples.all(vm, spec) as StoredSample[]).map(sampleOf)
    if (samples.length > 0) this.statements.clearWindow.run(vm, spec)
    return samples
  }

  setLatest (vm: string, metric: string, sample: Sample): void {
    this.statements.setLatest.run(vm, metric, sample.ts, sample.value)
  }

  latest (vm: string, metric: string): Sample | undefined {
    const stored = this.statements.latest.get(vm, metric) as StoredSample | undefined
    return stored && sampleOf(stored)
  }

  enqueue (consumer: string, delivery: Delivery): void {
    this.enqueueFor([consumer], delivery)
  }

  /** Queues one delivery for each consumer, encoded once. */
  enqueueFor (consumers: readonly string[], delivery: Delivery): void {
    if (consumers.length === 0) return
    const body = stringifyExact(delivery)
    const now = Date.now()
    for (const consumer of consumers) this.statements.enqueue.run(consumer, delivery.id, body, delivery.vm, now)
  }

  /** The consumer's oldest deliveries that are due, in the order they were queued (acknowledged ones already removed). */
  due (consumer: string, now: number, limit: number): QueuedDelivery[] {
    this.applyAcks()
    return this.statements.due.all(consumer, now, limit) as QueuedDelivery[]
  }

  /** The deliveries were acknowledged: they leave the outbox with the next transaction, or within ACK_LINGER_MS. */
  ack (queued: readonly QueuedDelivery[]): void {
    for (const q of queued) this.acked.push(q.seq)
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined
      this.applyAcks()
    }, ACK_LINGER_MS).unref()
  }

  /** Deletes acknowledged rows now (in a transaction of their own, if none came along); a refusal is counted, and they wait for the next one. */
  private applyAcks (): void {
    if (this.acked.length === 0) return
    try {
      this.transaction(() => {}, 'outbox')
    } catch (err) {
      if (!isStorageError(err)) throw err
    }
  }

  /** Inside a transaction: deletes the acknowledged rows; they leave the list once it commits. */
  private deleteAcked (): void {
    const taken = this.acked.length
    if (taken === 0) return
    for (let i = 0; i < taken; i++) this.statements.ack.run(this.acked[i])
    this.afterCommit(() => {
      this.acked = this.acked.slice(taken)
      if (this.acked.length === 0) {
        clearTimeout(this.ackTimer)
        this.ackTimer = undefined
      }
    })
  }

  retryLater (queued: readonly QueuedDelivery[], nextAttempt: number): void {
    this.transaction(() => { for (const q of queued) this.statements.retry.run(nextAttempt, q.seq) }, 'outbox')
  }

  /**
   * Moves deliveries a receiver refused for good from the outbox to the dead-letter store, in one
   * transaction (a refused write leaves them in the outbox, and throws). Returns how many old
   * dead letters were dropped to stay within the store's limits.
   */
  deadLetter (consumer: string, entries: ReadonlyArray<DeadLetterEntry & { delivery: QueuedDelivery }>, now: number): number {
    return this.transaction(() => {
      for (const { delivery } of entries) this.statements.ack.run(delivery.seq)
      return this.deadLetters.add(consumer, entries, now)
    }, 'deadletter')
  }

  /** Applies new dead-letter store bounds (SIGHUP); returns how many entries past them were dropped. */
  setDeadLetterLimits (limits: DeadLetterLimits, now: number): number {
    return this.transaction(() => this.deadLetters.setLimits(limits, now), 'deadletter')
  }

  /** Deliveries of the consumer in the dead-letter store. */
  deadLetterLength (consumer: string): number {
    return this.deadLetters.length(consumer)
  }

  queueLength (consumer: string): number {
    this.applyAcks()
    return this.statements.queueLength.get(consumer) as number
  }

  close (): void {
    this.applyAcks()
    clearTimeout(this.ackTimer)
    this.db.close()
  }
}

/** A sample as read with safeIntegers: INTEGER columns come back as bigint, so a KPI integer beyond ±2^53 stays exact. */
interface StoredSample {
  ts: bigint
  value: bigint | number | string
}

function sampleOf (stored: StoredSample): Sample {
  const { value } = stored
  const exact = typeof value === 'bigint' && (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
  return { ts: Number(stored.ts), value: typeof value === 'bigint' && !exact ? Number(value) : value }
}
