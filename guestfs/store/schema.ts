import { randomBytes } from 'node:crypto'
import type { Database } from 'better-sqlite3'

/** Bumped when the internal tables change shape; a newer database is refused rather than damaged. */
export const SCHEMA_VERSION = 1

/**
 * Internal tables (the `_fedvm_` prefix is refused as a KPI name, so they never collide);
 * `_fedvm_meta` holds the database's epoch. The main one:
 * `_fedvm_files` has one row per KPI name: its directory, whether it is listed, and the bytes and
 * time of its last commit, so reading a file returns exactly what was last written.
 *
 * Commit order needs no table of its own: every KPI row's rowid is drawn from one sequence across
 * all tables, so rowid is both the row's identity and the KPI feed's cursor.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS _fedvm_files (
  name      TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
  encrypted INTEGER NOT NULL,
  visible   INTEGER NOT NULL,
  ts        INTEGER NOT NULL,
  content   BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS _fedvm_meta (
  key   TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
);
`

export type SyncMode = 'normal' | 'full'

/**
 * SQLite's page cache per connection, in KiB when negative (its default is 16 MiB): commits touch a
 * few pages at the end of each table, and a feed catching up reads the tables once, so a cache that
 * grew with the database would only hold memory inside the VM.
 */
export const PAGE_CACHE = -1024

/** WAL with synchronous=NORMAL survives the process being killed; FULL also survives power loss. */
export function prepareDatabase (db: Database, sync: SyncMode): void {
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`)
  db.pragma('busy_timeout = 5000')
  db.pragma(`cache_size = ${PAGE_CACHE}`)
  // Checkpoints run after commits' answers are out (wal-checkpoints.ts), never inside a commit.
  db.pragma('wal_autocheckpoint = 0')
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    throw new Error(`database schema version ${version} is newer than this fedvm understands (${SCHEMA_VERSION})`)
  }
  db.exec(DDL)
  // The database's identity: a host that followed another database (replaced, restored from a
  // snapshot) sees a new epoch and starts its cursor over instead of skipping rows.
  db.prepare("INSERT OR IGNORE INTO _fedvm_meta (key, value) VALUES ('epoch', ?)").run(randomBytes(16).toString('hex'))
  db.pragma(`user_version = ${SCHEMA_VERSION}`)
}

export function databaseEpoch (db: Database): string {
  return db.prepare("SELECT value FROM _fedvm_meta WHERE key = 'epoch'").pluck().get() as string
}
