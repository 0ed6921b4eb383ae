import type Database from 'better-sqlite3'
import type { Delivery } from './delivery-schema'

export interface QueuedDelivery {
  seq: number
  delivery: Delivery
  /** Its JSON length: what it adds to a request body. */
  bytes: number
}

/**
 * Deliveries this site holds for a next hop until that hop acknowledged them (at-least-once per
 * hop). Keyed by delivery id: a repeat that arrives while the first is still queued is dropped.
 * A row is deleted only after the next hop's verified 2xx; rows the next hop refused for good are
 * kept, marked dead, and never sent again.
 */
export class RelayOutbox {
  private readonly add: Database.Statement
  private readonly selectDue: Database.Statement
  private readonly deleteSeq: Database.Statement
  private readonly markDead: Database.Statement

  constructor (private readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS "outbox" ("seq" INTEGER PRIMARY KEY, "id" TEXT NOT NULL UNIQUE, "next_hop" TEXT NOT NULL, "body" TEXT NOT NULL, "dead" INTEGER NOT NULL DEFAULT 0);
      CREATE INDEX IF NOT EXISTS "outbox_hop" ON "outbox" ("next_hop", "dead", "seq");
    `)
    this.add = db.prepare('INSERT OR IGNORE INTO "outbox" ("id", "next_hop", "body") VALUES (?, ?, ?)')
    this.selectDue = db.prepare('SELECT "seq", "body" FROM "outbox" WHERE "next_hop" = ? AND "dead" = 0 AND "seq" > ? ORDER BY "seq" LIMIT ?')
    this.deleteSeq = db.prepare('DELETE FROM "outbox" WHERE "seq" = ?')
    this.markDead = db.prepare('UPDATE "outbox" SET "dead" = 1 WHERE "seq" = ?')
  }

  /** Queues deliveries for a next hop (call inside the batch's transaction). */
  enqueue (nextHop: string, deliveries: readonly Delivery[]): void {
    for (const d of deliveries) this.add.run(d.id, nextHop, JSON.stringify(d))
  }

  /** The oldest queued deliveries for a hop, as many as fit in `maxBytes` of JSON (at least one). */
  due (nextHop: string, maxCount: number, maxBytes: number, afterSeq = 0): QueuedDelivery[] {
    const rows = this.selectDue.all(nextHop, afterSeq, maxCount) as Array<{ seq: number, body: string }>
    const result: QueuedDelivery[] = []
    let size = 0
    for (const row of rows) {
      size += row.body.length + 1
      if (result.length > 0 && size > maxBytes) break
      result.push({ seq: row.seq, delivery: JSON.parse(row.body), bytes: row.body.length })
    }
    return result
  }

  /** The next hop acknowledged these: forget them. */
  ack (queued: readonly QueuedDelivery[]): void {
    this.db.transaction(() => { for (const q of queued) this.deleteSeq.run(q.seq) })()
  }

  dead (queued: readonly QueuedDelivery[]): void {
    this.db.transaction(() => { for (const q of queued) this.markDead.run(q.seq) })()
  }

  /** Next hops with deliveries waiting (at start, after a restart). */
  nextHops (): string[] {
    return (this.db.prepare('SELECT DISTINCT "next_hop" FROM "outbox" WHERE "dead" = 0').all() as Array<{ next_hop: string }>).map((r) => r.next_hop)
  }

  /** How many deliveries wait, per next hop (live ones). */
  counts (): Record<string, number> {
    const rows = this.db.prepare('SELECT "next_hop", count(*) AS n FROM "outbox" WHERE "dead" = 0 GROUP BY "next_hop"').all() as Array<{ next_hop: string, n: number }>
    return Object.fromEntries(rows.map((r) => [r.next_hop, r.n]))
  }
}
