import type Database from 'better-sqlite3'
import type { Delivery } from '../../relay/delivery'
import { deliveryFromRow } from '../primary-store'

/**
 * The remote-write outbox: a cursor over the primary store's own rows (their rowid, which grows with
 * each stored delivery), kept per receiver in the same database. A delivery is queued for Prometheus
 * in the very transaction that stores it, without a second copy, and a row counts as sent only once
 * the receiver answered 2xx (at least once: a repeat of a sample Prometheus holds is a no-op there).
 */
export class RemoteWriteCursor {
  private readonly read: Database.Statement
  private readonly write: Database.Statement
  private readonly after: Database.Statement
  private readonly count: Database.Statement

  constructor (db: Database.Database, private readonly receiver: string) {
    db.exec('CREATE TABLE IF NOT EXISTS "remote_write_cursor" ("receiver" TEXT PRIMARY KEY, "sent_rowid" INTEGER NOT NULL)')
    this.read = db.prepare('SELECT "sent_rowid" FROM "remote_write_cursor" WHERE "receiver" = ?')
    this.write = db.prepare('INSERT INTO "remote_write_cursor" ("receiver", "sent_rowid") VALUES (?, ?) ON CONFLICT ("receiver") DO UPDATE SET "sent_rowid" = excluded."sent_rowid"')
    this.after = db.prepare('SELECT "rowid" AS "seq", * FROM "deliveries" WHERE "rowid" > ? ORDER BY "rowid" LIMIT ?')
    this.count = db.prepare('SELECT count(*) AS "n" FROM "deliveries" WHERE "rowid" > ?')
  }

  /** The rowid of the last delivery the receiver acknowledged (0: none yet). */
  get sent (): number {
    return (this.read.get(this.receiver) as { sent_rowid: number } | undefined)?.sent_rowid ?? 0
  }

  /** The next deliveries not yet acknowledged, oldest stored first, at most `limit`. */
  due (limit: number): Array<{ seq: number, delivery: Delivery }> {
    const rows = this.after.all(this.sent, limit) as Array<Record<string, unknown>>
    return rows.map((row) => ({ seq: row.seq as number, delivery: deliveryFromRow(row) }))
  }

  /** The receiver acknowledged (or refused for good) every delivery up to `seq`. */
  advance (seq: number): void {
    this.write.run(this.receiver, seq)
  }

  /** Deliveries stored and not yet acknowledged. */
  pending (): number {
    return (this.count.get(this.sent) as { n: number }).n
  }
}
