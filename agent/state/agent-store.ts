import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import type { Sample } from '../processing/window'
import type { Delivery } from '../engine/delivery'

const DDL = `
CREATE TABLE IF NOT EXISTS feed_cursors (vm TEXT PRIMARY KEY, seq TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS window_samples (vm TEXT NOT NULL, spec TEXT NOT NULL, ts INTEGER NOT NULL, value);
CREATE INDEX IF NOT EXISTS window_samples_by_spec ON window_samples (vm, spec);
CREATE TABLE IF NOT EXISTS latest_values (vm TEXT NOT NULL, metric TEXT NOT NULL, ts INTEGER NOT NULL, value,
  PRIMARY KEY (vm, metric)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (consumer TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (consumer, id));
`

/**
 * The agent's durable state in `stateDir/agent.db`: each VM's feed cursor, the samples of open
 * delivery windows, the latest value of each sampled metric, and the outbox. A batch of feed rows
 * changes all of them in one transaction, so a crash at any moment neither loses nor repeats a row.
 */
export class AgentStore {
  private readonly db: Db
  private readonly statements: Record<string, Statement>

  constructor (stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o750 })
    this.db = new Database(join(stateDir, 'agent.db'))
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(DDL)
    this.statements = {
      cursor: this.db.prepare('SELECT seq FROM feed_cursors WHERE vm = ?').pluck(),
      setCursor: this.db.prepare('INSERT INTO feed_cursors (vm, seq) VALUES (?, ?) ON CONFLICT (vm) DO UPDATE SET seq = excluded.seq'),
      addSample: this.db.prepare('INSERT INTO window_samples (vm, spec, ts, value) VALUES (?, ?, ?, ?)'),
      windowSamples: this.db.prepare('SELECT ts, value FROM window_samples WHERE vm = ? AND spec = ? ORDER BY rowid'),
      clearWindow: this.db.prepare('DELETE FROM window_samples WHERE vm = ? AND spec = ?'),
      openWindows: this.db.prepare('SELECT DISTINCT vm, spec FROM window_samples'),
      setLatest: this.db.prepare(`INSERT INTO latest_values (vm, metric, ts, value) VALUES (?, ?, ?, ?)
        ON CONFLICT (vm, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value`),
      latest: this.db.prepare('SELECT ts, value FROM latest_values WHERE vm = ? AND metric = ?'),
      enqueue: this.db.prepare('INSERT OR IGNORE INTO outbox (consumer, id, body) VALUES (?, ?, ?)'),
      due: this.db.prepare('SELECT id, body, attempts FROM outbox WHERE consumer = ? AND next_attempt <= ? ORDER BY rowid LIMIT ?'),
      ack: this.db.prepare('DELETE FROM outbox WHERE consumer = ? AND id = ?'),
      retry: this.db.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt = ? WHERE consumer = ? AND id = ?'),
      queueLength: this.db.prepare('SELECT count(*) FROM outbox WHERE consumer = ?').pluck(),
    }
  }

  /** Runs fn in one transaction (nested calls join the outer one). */
  transaction<T> (fn: () => T): T {
    return this.db.transaction(fn)()
  }

  cursor (vm: string): bigint {
    const seq = this.statements.cursor.get(vm) as string | undefined
    return seq === undefined ? 0n : BigInt(seq)
  }

  setCursor (vm: string, seq: bigint): void {
    this.statements.setCursor.run(vm, seq.toString())
  }

  addWindowSample (vm: string, spec: string, sample: Sample): void {
    this.statements.addSample.run(vm, spec, sample.ts, sample.value)
  }

  /** The window's samples, removed from the store (the caller's transaction makes the delivery at once). */
  takeWindow (vm: string, spec: string): Sample[] {
    const samples = this.statements.windowSamples.all(vm, spec) as Sample[]
    if (samples.length > 0) this.statements.clearWindow.run(vm, spec)
    return samples
  }

  openWindows (): Array<{ vm: string, spec: string }> {
    return this.statements.openWindows.all() as Array<{ vm: string, spec: string }>
  }

  setLatest (vm: string, metric: string, sample: Sample): void {
    this.statements.setLatest.run(vm, metric, sample.ts, sample.value)
  }

  latest (vm: string, metric: string): Sample | undefined {
    return this.statements.latest.get(vm, metric) as Sample | undefined
  }

  enqueue (consumer: string, delivery: Delivery): void {
    this.statements.enqueue.run(consumer, delivery.id, JSON.stringify(delivery))
  }

  due (consumer: string, now: number, limit: number): Array<{ id: string, body: string, attempts: number }> {
    return this.statements.due.all(consumer, now, limit) as Array<{ id: string, body: string, attempts: number }>
  }

  ack (consumer: string, ids: string[]): void {
    this.transaction(() => { for (const id of ids) this.statements.ack.run(consumer, id) })
  }

  retryLater (consumer: string, ids: string[], nextAttempt: number): void {
    this.transaction(() => { for (const id of ids) this.statements.retry.run(nextAttempt, consumer, id) })
  }

  queueLength (consumer: string): number {
    return this.statements.queueLength.get(consumer) as number
  }

  close (): void {
    this.db.close()
  }
}
