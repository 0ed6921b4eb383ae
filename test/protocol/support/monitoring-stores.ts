import Database from 'better-sqlite3'
import { existsSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import type { Delivery } from '../../../protocol/relay/delivery'
import { deliveryFromRow } from '../../../protocol/primary/primary-store'
import type { Federation } from './federation'

/**
 * Reads the sites' monitoring.db files from the test process (a fresh read-only connection each
 * time, so a site may be killed and restarted in between): the primary store and the relay outbox.
 */
export class MonitoringStores {
  constructor (private readonly fed: Federation) {}

  file (site: string): string {
    return join(this.fed.site(site).dir, 'state', 'monitoring.db')
  }

  private read<T> (site: string, fn: (db: Database.Database) => T, empty: T): T {
    if (!existsSync(this.file(site))) return empty
    const db = new Database(this.file(site), { readonly: true, fileMustExist: true })
    try {
      return fn(db)
    } finally {
      db.close()
    }
  }

  /** The primary store's deliveries, oldest first. */
  deliveries (site: string): Array<Delivery & { receivedAt: number }> {
    return this.read(site, (db) => (db.prepare('SELECT * FROM "deliveries" ORDER BY "from_ms", "id"').all() as Array<Record<string, unknown>>).map(deliveryFromRow), [])
  }

  /** How many of these ids the primary store holds (each at most once: the id is its key). */
  countIds (site: string, ids: string[]): number {
    return this.read(site, (db) => {
      const one = db.prepare('SELECT count(*) FROM "deliveries" WHERE "id" = ?').pluck()
      return ids.reduce((n, id) => n + (one.get(id) as number), 0)
    }, 0)
  }

  /** Deliveries waiting in the relay outbox for a next hop. */
  queued (site: string): number {
    return this.read(site, (db) => (db.prepare('SELECT sum("count") FROM "outbox" WHERE "dead" = 0').pluck().get() as number | null) ?? 0, 0)
  }

  /** monitoring.db and its WAL, byte for byte (to look for plaintext). */
  rawBytes (site: string): Buffer {
    const file = this.file(site)
    return Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)))
  }
}

/** `n` processed deliveries with ids PREFIX-0…, as an agent would send them. */
export function injected (vm: string, prefix: string, n: number, now = Date.now()): Delivery[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, vm, metric: 'kpi:load.requests', format: 'processed' as const, function: 'mean' as const, from: now + i, to: now + i, value: i }))
}

/** POSTs to a site's local ingest (plain HTTP, as the agent does): status and JSON answer. */
export function postIngest (url: string, payload: unknown): Promise<{ status: number, json: any }> {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload))
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        try { json = JSON.parse(text) } catch { json = text }
        resolve({ status: res.statusCode ?? 0, json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}
