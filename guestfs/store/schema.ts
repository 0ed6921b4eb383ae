import type { Database } from 'better-sqlite3'

/** Bumped when the internal tables change shape; a newer database is refused rather than damaged. */
export const SCHEMA_VERSION = 1

/**
 * Internal tables (the `_fedvm_` prefix is refused as a KPI name, so they never collide):
 * - `_fedvm_files`: one row per KPI name: its directory, whether it is listed, and the bytes and
 *   time of its last commit, so reading a file returns exactly what was last written.
 * - `_fedvm_journal`: every committed row in commit order; `seq` is the cursor the KPI feed uses.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS _fedvm_files (
  name      TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
  encrypted INTEGER NOT NULL,
  visible   INTEGER NOT NULL,
  ts        INTEGER NOT NULL,
  content   BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS _fedvm_journal (
  seq  INTEGER PRIMARY KEY,
  kpi  TEXT    NOT NULL,
  row  INTEGER NOT NULL
);
`

export type SyncMode = 'normal' | 'full'

/** WAL with synchronous=NORMAL survives the process being killed; FULL also survives power loss. */
export function prepareDatabase (db: Database, sync: SyncMode): void {
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`)
  db.pragma('busy_timeout = 5000')
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    throw new Error(`database schema version ${version} is newer than this fedvm understands (${SCHEMA_VERSION})`)
  }
  db.exec(DDL)
  db.pragma(`user_version = ${SCHEMA_VERSION}`)
}
