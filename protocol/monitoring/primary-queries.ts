import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Delivery } from './delivery-schema'
import { MonitoringViewError } from './errors'
import { MONITORING_DB_FILE } from './monitoring-db'
import { deliveryFromRow } from './primary-store'

export interface DeliveryQuery {
  vm: string
  /** Every metric of the VM when left out. */
  metric?: string
  /** Data time (a delivery's `to`, ms), inclusive. */
  since?: number
  until?: number
  /** The newest this many (still listed oldest first). */
  limit: number
}

export type StoredDelivery = Delivery & { receivedAt: number }

/**
 * Opens a site's monitoring.db for reading only (the daemon may be writing it: WAL lets both run).
 * A site that never stored anything has no file: that is a clear error, not an empty answer.
 */
export function openStoreForReading (stateDir: string): Database.Database {
  const file = join(stateDir, MONITORING_DB_FILE)
  if (!existsSync(file)) throw new MonitoringViewError('store-missing', `${file} does not exist: this site has stored no monitoring data (is monitoring configured, and is stateDir right?)`)
  const db = new Database(file, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  return db
}

/** A VM's deliveries by data time, oldest first; uses the (vm, metric, to_ms) index. */
export function queryDeliveries (db: Database.Database, q: DeliveryQuery): StoredDelivery[] {
  if (!hasTable(db)) return []
  const where = ['"vm" = @vm']
  if (q.metric !== undefined) where.push('"metric" = @metric')
  if (q.since !== undefined) where.push('"to_ms" >= @since')
  if (q.until !== undefined) where.push('"to_ms" <= @until')
  const rows = db.prepare(`SELECT * FROM "deliveries" WHERE ${where.join(' AND ')} ORDER BY "to_ms" DESC, "id" DESC LIMIT @limit`)
    .all({ vm: q.vm, metric: q.metric ?? null, since: q.since ?? null, until: q.until ?? null, limit: q.limit }) as Array<Record<string, unknown>>
  return rows.reverse().map(deliveryFromRow)
}

/**
 * The newest delivery of every (vm, metric, function): SQLite gives a bare column the values of the
 * row that holds the MAX() of its group, so this is one pass over the table (read once, at start).
 */
export function latestDeliveries (db: Database.Database): StoredDelivery[] {
  if (!hasTable(db)) return []
  const rows = db.prepare('SELECT *, MAX("to_ms") AS "_max" FROM "deliveries" GROUP BY "vm", "metric", "function"').all() as Array<Record<string, unknown>>
  return rows.map(deliveryFromRow)
}

function hasTable (db: Database.Database): boolean {
  return db.prepare('SELECT 1 FROM "sqlite_master" WHERE "type" = \'table\' AND "name" = \'deliveries\'').get() !== undefined
}
