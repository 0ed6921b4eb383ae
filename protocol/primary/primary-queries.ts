import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Delivery } from '../relay/delivery'
import { MonitoringViewError } from './errors'
import { hasTable, MONITORING_DB_FILE } from '../relay/monitoring-db'
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
  if (!hasTable(db, 'deliveries')) return []
  const where = ['"vm" = @vm']
  if (q.metric !== undefined) where.push('"metric" = @metric')
  if (q.since !== undefined) where.push('"to_ms" >= @since')
  if (q.until !== undefined) where.push('"to_ms" <= @until')
  const rows = db.prepare(`SELECT * FROM "deliveries" WHERE ${where.join(' AND ')} ORDER BY "to_ms" DESC, "id" DESC LIMIT @limit`)
    .all({ vm: q.vm, metric: q.metric ?? null, since: q.since ?? null, until: q.until ?? null, limit: q.limit }) as Array<Record<string, unknown>>
  return rows.reverse().map(deliveryFromRow)
}

/** How far back in one metric's deliveries the newest of each of its functions is looked for. */
const LATEST_DEPTH = 64

/**
 * The newest delivery of every (vm, metric, function), read once at start. It walks the
 * (vm, metric, to_ms) index: one seek per distinct (vm, metric), then that metric's newest
 * LATEST_DEPTH deliveries. A function not among them has stopped being delivered long ago and
 * is left out (a plain GROUP BY would sort the whole table instead: seconds per 100k rows).
 */
export function latestDeliveries (db: Database.Database): StoredDelivery[] {
  if (!hasTable(db, 'deliveries')) return []
  const first = db.prepare('SELECT "vm", "metric" FROM "deliveries" ORDER BY "vm", "metric" LIMIT 1')
  const next = db.prepare('SELECT "vm", "metric" FROM "deliveries" WHERE ("vm", "metric") > (?, ?) ORDER BY "vm", "metric" LIMIT 1')
  const newest = db.prepare('SELECT * FROM "deliveries" WHERE "vm" = ? AND "metric" = ? ORDER BY "to_ms" DESC LIMIT ?')
  const result: StoredDelivery[] = []
  for (let pair = first.get() as { vm: string, metric: string } | undefined; pair !== undefined; pair = next.get(pair.vm, pair.metric) as typeof pair) {
    const seen = new Set<string>()
    for (const row of newest.all(pair.vm, pair.metric, LATEST_DEPTH) as Array<Record<string, unknown>>) {
      const key = `${String(row.format)}:${String(row.function)}`
      if (seen.has(key)) continue
      seen.add(key)
      result.push(deliveryFromRow(row))
    }
  }
  return result
}

/** The metrics a VM has deliveries for, in name order: one index seek per metric, however many rows each holds. */
export function metricsOf (db: Database.Database, vm: string): string[] {
  if (!hasTable(db, 'deliveries')) return []
  const next = db.prepare('SELECT "metric" FROM "deliveries" WHERE "vm" = ? AND "metric" > ? ORDER BY "metric" LIMIT 1').pluck()
  const metrics: string[] = []
  for (let metric = next.get(vm, '') as string | undefined; metric !== undefined; metric = next.get(vm, metric) as string | undefined) metrics.push(metric)
  return metrics
}
