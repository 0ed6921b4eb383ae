import Database from 'better-sqlite3'
import { FsError, toFsError } from '../errors'

/**
 * The errno a caller sees when SQLite refuses a sample (DESIGN.md Contract 1): a full disk is
 * ENOSPC, more columns than SQLite allows in a table is EINVAL (the sample's shape is wrong, like
 * any other CSV rule), a value larger than SQLite takes is EFBIG; anything else stays EIO.
 */
export function storeError (err: unknown): FsError {
  if (!(err instanceof Database.SqliteError)) return toFsError(err)
  if (err.code === 'SQLITE_FULL') return new FsError('ENOSPC', `the disk holding the KPI database is full (${err.message})`, { cause: err })
  if (err.code === 'SQLITE_TOOBIG') return new FsError('EFBIG', `a value is larger than SQLite stores (${err.message})`, { cause: err })
  // SQLite reports this limit (SQLITE_MAX_COLUMN, 2000 by default) with the generic SQLITE_ERROR code.
  if (/^too many columns/.test(err.message)) return new FsError('EINVAL', `the sample has more columns than a KPI table can hold (${err.message})`, { cause: err })
  return toFsError(err)
}
