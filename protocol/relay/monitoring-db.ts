import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

export const MONITORING_DB_FILE = 'monitoring.db'

/**
 * The site's monitoring database, `monitoring.db` in its stateDir (apart from site.db, so the
 * relay's write rate never holds up the protocol's state): the relay outbox and the primary store
 * share it, so one transaction covers a batch whatever its deliveries' next hops are.
 */
export function openMonitoringDb (stateDir: string): Database.Database {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  const db = new Database(join(stateDir, MONITORING_DB_FILE))
  db.pragma('journal_mode = WAL')
  // WAL + NORMAL: a committed batch survives the site being killed (SIGKILL); FULL would add an fsync per batch.
  db.pragma('synchronous = NORMAL')
  return db
}

/** Whether the table exists yet: a reader (a read-only connection too) finds none before its writer first ran. */
export function hasTable (db: Database.Database, table: string): boolean {
  return db.prepare('SELECT 1 FROM "sqlite_master" WHERE "type" = \'table\' AND "name" = ?').get(table) !== undefined
}
