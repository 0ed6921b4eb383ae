import type Database from 'better-sqlite3'
import { parseExact, stringifyExact } from '../exact-json'
import type { Delivery } from '../relay/delivery'

/**
 * What the primary site keeps of its VMs' monitoring data: every delivery once (its id is the
 * key, so repeats from at-least-once hops are dropped). Sealed payloads stay sealed here; they are
 * opened only when read (query, /metrics, rules), with the site's seal.key.
 */
export class PrimaryStore {
  private readonly insertRow: Database.Statement

  constructor (readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS "deliveries" ("id" TEXT PRIMARY KEY, "vm" TEXT NOT NULL, "metric" TEXT NOT NULL, "format" TEXT NOT NULL, "function" TEXT,
        "from_ms" INTEGER NOT NULL, "to_ms" INTEGER NOT NULL, "value" REAL, "samples" TEXT, "sealed" TEXT, "received_at" INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS "deliveries_vm_metric_to" ON "deliveries" ("vm", "metric", "to_ms");
    `)
    this.insertRow = db.prepare(`INSERT OR IGNORE INTO "deliveries" ("id", "vm", "metric", "format", "function", "from_ms", "to_ms", "value", "samples", "sealed", "received_at")
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  }

  /** Stores deliveries (call inside a transaction for a batch); returns those not seen before. */
  insert (deliveries: readonly Delivery[], receivedAt = Date.now()): Delivery[] {
    const fresh: Delivery[] = []
    for (const d of deliveries) {
      const result = this.insertRow.run(d.id, d.vm, d.metric, d.format, d.function ?? null, d.from, d.to, d.value ?? null,
        d.samples === undefined ? null : stringifyExact(d.samples), d.sealed ?? null, receivedAt)
      if (result.changes > 0) fresh.push(d)
    }
    return fresh
  }
}

/** A row of "deliveries" as the Delivery it stored (for readers: queries, /metrics, rules). */
export function deliveryFromRow (row: Record<string, unknown>): Delivery & { receivedAt: number } {
  const d: Delivery & { receivedAt: number } = {
    id: row.id as string, vm: row.vm as string, metric: row.metric as string, format: row.format as Delivery['format'],
    from: row.from_ms as number, to: row.to_ms as number, receivedAt: row.received_at as number,
  }
  if (row.function !== null && row.function !== undefined) d.function = row.function as Delivery['function']
  if (row.value !== null && row.value !== undefined) d.value = row.value as number
  if (row.samples !== null && row.samples !== undefined) d.samples = parseExact(row.samples as string) as Delivery['samples']
  if (row.sealed !== null && row.sealed !== undefined) d.sealed = row.sealed as string
  return d
}
