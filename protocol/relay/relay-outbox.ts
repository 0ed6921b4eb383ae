import type Database from 'better-sqlite3'
import { parseExact, stringifyExact } from '../exact-json'
import type { Delivery } from './delivery'

/** Rows of the outbox taken together for one request to the next hop. */
export interface QueuedBatch {
  seqs: number[]
  deliveries: Delivery[]
}

/** A delivery the next hop refused for good, with that hop's words: its problem `code` and `detail`. */
export interface DeadDelivery {
  delivery: Delivery
  code: string
  detail: string
}

/**
 * The outbox table. A dead row keeps when it was set apart and why (`dead_at`, `code`, `detail`),
 * so the operator sees it with `fedvm site dead-letters`; rows set apart before those columns
 * existed have them NULL. `outbox_dead` holds only the dead rows: counting them reads none of the
 * queue, however long it grew while a hop was down.
 */
const OUTBOX_DDL = `
  CREATE TABLE IF NOT EXISTS "outbox" ("seq" INTEGER PRIMARY KEY AUTOINCREMENT, "next_hop" TEXT NOT NULL, "count" INTEGER NOT NULL, "bytes" INTEGER NOT NULL, "body" TEXT NOT NULL, "dead" INTEGER NOT NULL DEFAULT 0,
    "dead_at" INTEGER, "code" TEXT, "detail" TEXT);
  CREATE INDEX IF NOT EXISTS "outbox_hop" ON "outbox" ("next_hop", "dead", "seq");
  CREATE INDEX IF NOT EXISTS "outbox_dead" ON "outbox" ("next_hop") WHERE "dead" = 1;
`

/** Columns added after the table first shipped: a database made before them gets them (NULL in its existing rows). */
const ADDED_COLUMNS = [['dead_at', 'INTEGER'], ['code', 'TEXT'], ['detail', 'TEXT']] as const

/** Makes the outbox table, or brings an older one up to OUTBOX_DDL, in one transaction. */
export function migrateOutbox (db: Database.Database): void {
  db.transaction(() => {
    db.exec(OUTBOX_DDL)
    const present = new Set((db.prepare('PRAGMA table_info("outbox")').all() as Array<{ name: string }>).map((c) => c.name))
    for (const [name, type] of ADDED_COLUMNS) {
      if (!present.has(name)) db.exec(`ALTER TABLE "outbox" ADD COLUMN "${name}" ${type}`)
    }
  }).immediate()
}

/**
 * Deliveries this site holds for a next hop until that hop acknowledged them (at-least-once per
 * hop). A row holds a run of deliveries accepted together (one JSON array, at most `maxRowBytes`),
 * so a batch costs one row to store, read and delete whatever its size: per-delivery rows cost
 * twice as much CPU here, and repeats are dropped at the primary anyway (its key is the delivery id).
 * Rows are deleted only after the next hop's verified 2xx; deliveries the next hop refused for good
 * are kept in rows marked dead with the hop's reason, never sent again (unless the operator requeues
 * them: relay-dead-rows.ts).
 */
export class RelayOutbox {
  private readonly insert: Database.Statement
  private readonly selectDue: Database.Statement
  private readonly deleteSeq: Database.Statement
  private readonly countDead: Database.Statement
  /** Dead deliveries per next hop: counted at start and after another process's change, added to as rows are set apart here. */
  private readonly dead = new Map<string, number>()
  private readonly settleTx: (batch: QueuedBatch, nextHop: string, dead: readonly DeadDelivery[], again: readonly Delivery[]) => void

  constructor (private readonly db: Database.Database, private readonly maxRowBytes: number, private readonly now: () => number = Date.now) {
    migrateOutbox(db)
    this.insert = db.prepare('INSERT INTO "outbox" ("next_hop", "count", "bytes", "body", "dead", "dead_at", "code", "detail") VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    this.selectDue = db.prepare('SELECT "seq", "bytes", "body" FROM "outbox" WHERE "next_hop" = ? AND "dead" = 0 AND "seq" > ? ORDER BY "seq" LIMIT ?')
    this.deleteSeq = db.prepare('DELETE FROM "outbox" WHERE "seq" = ?')
    this.countDead = db.prepare('SELECT "next_hop", sum("count") AS n FROM "outbox" WHERE "dead" = 1 GROUP BY "next_hop"')
    this.settleTx = db.transaction((batch: QueuedBatch, nextHop: string, dead: readonly DeadDelivery[], again: readonly Delivery[]) => {
      for (const seq of batch.seqs) this.deleteSeq.run(seq)
      // One dead row per reason: each row keeps the hop's words for every delivery in it.
      const byReason = new Map<string, DeadDelivery[]>()
      for (const d of dead) {
        const key = JSON.stringify([d.code, d.detail])
        const list = byReason.get(key)
        if (list === undefined) byReason.set(key, [d])
        else list.push(d)
      }
      for (const list of byReason.values()) this.add(nextHop, list.map((d) => d.delivery), { code: list[0].code, detail: list[0].detail })
      if (again.length > 0) this.add(nextHop, again)
    })
    this.recountDead()
  }

  /** Queues deliveries for a next hop (call inside the batch's transaction). */
  enqueue (nextHop: string, deliveries: readonly Delivery[]): void {
    this.add(nextHop, deliveries)
  }

  /** The oldest queued rows for a hop after `afterSeq`, as many as fit in `maxBytes` of JSON (at least one row). */
  due (nextHop: string, maxBytes: number, afterSeq = 0): QueuedBatch {
    const rows = this.selectDue.all(nextHop, afterSeq, 64) as Array<{ seq: number, bytes: number, body: string }>
    const batch: QueuedBatch = { seqs: [], deliveries: [] }
    let size = 0
    for (const row of rows) {
      size += row.bytes
      if (batch.seqs.length > 0 && size > maxBytes) break
      batch.seqs.push(row.seq)
      for (const d of parseExact(row.body) as Delivery[]) batch.deliveries.push(d)
    }
    return batch
  }

  /**
   * The next hop acknowledged the batch except `dead` (refused for good, kept apart) and `again`
   * (to be sent again: queued anew at the end), in one transaction: forget the rest.
   */
  settle (nextHop: string, batch: QueuedBatch, dead: readonly DeadDelivery[] = [], again: readonly Delivery[] = []): void {
    this.settleTx(batch, nextHop, dead, again)
    if (dead.length > 0) this.dead.set(nextHop, (this.dead.get(nextHop) ?? 0) + dead.length)
  }

  /** Dead deliveries per next hop (of this process's writes and of those another process made before the last recountDead). */
  deadCounts (): ReadonlyMap<string, number> {
    return this.dead
  }

  /**
   * Counts the dead deliveries anew, after another process changed the outbox (the operator's
   * requeue): a hop whose dead rows all went back to the queue stays, at 0.
   */
  recountDead (): void {
    for (const hop of this.dead.keys()) this.dead.set(hop, 0)
    for (const row of this.countDead.all() as Array<{ next_hop: string, n: number }>) this.dead.set(row.next_hop, row.n)
  }

  /** Next hops with deliveries waiting (at start, after a restart). */
  nextHops (): string[] {
    return (this.db.prepare('SELECT DISTINCT "next_hop" FROM "outbox" WHERE "dead" = 0').all() as Array<{ next_hop: string }>).map((r) => r.next_hop)
  }

  /** How many deliveries wait, per next hop (live ones). */
  counts (): Record<string, number> {
    const rows = this.db.prepare('SELECT "next_hop", sum("count") AS n FROM "outbox" WHERE "dead" = 0 GROUP BY "next_hop"').all() as Array<{ next_hop: string, n: number }>
    return Object.fromEntries(rows.map((r) => [r.next_hop, r.n]))
  }

  /**
   * Runs of deliveries, each row's JSON at most maxRowBytes (a single larger delivery gets a row of
   * its own); rows set apart (dead) when a refusal is given.
   */
  private add (nextHop: string, deliveries: readonly Delivery[], refusal?: { code: string, detail: string }): void {
    let parts: string[] = []
    let bytes = 2
    const deadAt = refusal === undefined ? null : this.now()
    const flush = () => {
      if (parts.length === 0) return
      this.insert.run(nextHop, parts.length, bytes, `[${parts.join(',')}]`, refusal === undefined ? 0 : 1, deadAt, refusal?.code ?? null, refusal?.detail ?? null)
      parts = []
      bytes = 2
    }
    for (const d of deliveries) {
      const text = stringifyExact(d)
      const size = Buffer.byteLength(text) + 1
      if (parts.length > 0 && bytes + size > this.maxRowBytes) flush()
      parts.push(text)
      bytes += size
    }
    flush()
  }
}
