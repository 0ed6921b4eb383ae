import type { Database as Db, Statement } from 'better-sqlite3'
import { FsError } from '../errors'
import type { KpiValue } from '../csv/typed-value'
import { foldCase, quoteIdentifier } from '../sql-names'

/** A committed row as the KPI feed sends it: `seq` is its rowid, one sequence across all tables. */
export interface CommittedRow {
  readonly seq: bigint
  readonly name: string
  readonly ts: number
  /** Unencrypted: the table's column names for this row's values (the table's own spelling). */
  readonly columns: string[] | null
  readonly values: KpiValue[] | null
  /** Encrypted: the sealed bytes, as stored. */
  readonly sealed: Buffer | null
}

/** The columns a KPI table has, keyed by their case-folded name (SQLite ignores ASCII case). */
interface TableShape {
  readonly name: string
  readonly encrypted: boolean
  readonly columns: Map<string, string>
}

/**
 * The KPI tables themselves: creating them, adding columns as samples bring new ones, inserting
 * rows under a given rowid, and reading rows back in commit order. Shapes are cached and must be
 * reloaded (load) after a rolled-back transaction, which may have undone a CREATE or an ALTER.
 */
export class KpiTables {
  private readonly shapes = new Map<string, TableShape>()
  private readonly inserts = new Map<string, Statement>()

  constructor (private readonly db: Db) {}

  /** Reads the named tables' columns from SQLite; returns the largest rowid found (0 when none). */
  load (tables: ReadonlyArray<{ name: string, encrypted: boolean }>): bigint {
    this.shapes.clear()
    this.inserts.clear()
    let maxSeq = 0n
    for (const { name, encrypted } of tables) {
      const info = this.db.prepare(`PRAGMA table_info(${quoteIdentifier(name)})`).all() as Array<{ name: string }>
      if (info.length === 0) continue
      const columns = new Map(info.map((column) => [foldCase(column.name), column.name]))
      this.shapes.set(foldCase(name), { name, encrypted, columns })
      const maxRowid = this.db.prepare(`SELECT max(rowid) FROM ${quoteIdentifier(name)}`).safeIntegers().pluck().get() as bigint | null
      if (maxRowid !== null && maxRowid > maxSeq) maxSeq = maxRowid
    }
    return maxSeq
  }

  /**
   * Inserts one row under rowid `seq` (creating the table, or adding the sample's new columns,
   * as needed); returns the table columns the values went into.
   */
  insert (name: string, encrypted: boolean, seq: bigint, ts: number, sample: { columns: string[], values: KpiValue[] } | { data: Buffer }): string[] {
    const shape = this.tableFor(name, encrypted)
    const columns = 'data' in sample ? ['data'] : this.ensureColumns(shape, sample.columns)
    const values = 'data' in sample ? [sample.data] : sample.values
    this.insertFor(shape.name, columns).run(seq, BigInt(ts), ...values)
    return columns
  }

  /** Up to `limit` rows after `after` from all tables, in commit order (the KPI feed's catch-up). */
  rowsAfter (after: bigint, limit: number): CommittedRow[] {
    const rows: CommittedRow[] = []
    for (const shape of this.shapes.values()) {
      const read = this.db.prepare(`SELECT rowid AS "rowid", * FROM ${quoteIdentifier(shape.name)} WHERE rowid > ? ORDER BY rowid LIMIT ?`).safeIntegers()
      for (const record of read.all(after, BigInt(limit)) as Array<Record<string, KpiValue | Buffer>>) {
        rows.push(rowFromRecord(shape, record))
      }
    }
    rows.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))
    return rows.slice(0, limit)
  }

  private tableFor (name: string, encrypted: boolean): TableShape {
    const folded = foldCase(name)
    const existing = this.shapes.get(folded)
    if (existing) {
      if (existing.name !== name || existing.encrypted !== encrypted) {
        throw new FsError('EEXIST', `"${existing.name}" already owns this name`)
      }
      return existing
    }
    const table = quoteIdentifier(name)
    this.db.exec(encrypted
      ? `CREATE TABLE ${table} (ts INTEGER NOT NULL, data BLOB NOT NULL)`
      : `CREATE TABLE ${table} (ts INTEGER NOT NULL)`)
    const shape: TableShape = { name, encrypted, columns: new Map([['ts', 'ts']]) }
    if (encrypted) shape.columns.set('data', 'data')
    this.shapes.set(folded, shape)
    return shape
  }

  /** Maps the sample's columns onto the table's (ignoring ASCII case) and adds the new ones (older rows read NULL). */
  private ensureColumns (shape: TableShape, columns: string[]): string[] {
    return columns.map((column) => {
      const folded = foldCase(column)
      const existing = shape.columns.get(folded)
      if (existing) return existing
      this.db.exec(`ALTER TABLE ${quoteIdentifier(shape.name)} ADD COLUMN ${quoteIdentifier(column)}`)
      shape.columns.set(folded, column)
      return column
    })
  }

  private insertFor (table: string, columns: string[]): Statement {
    const key = [table, ...columns].join('\u0000')
    let insert = this.inserts.get(key)
    if (!insert) {
      const names = ['rowid', 'ts', ...columns].map(quoteIdentifier).join(', ')
      const params = ['?', '?', ...columns.map(() => '?')].join(', ')
      insert = this.db.prepare(`INSERT INTO ${quoteIdentifier(table)} (${names}) VALUES (${params})`)
      this.inserts.set(key, insert)
    }
    return insert
  }
}

/** A table row read with safeIntegers (INTEGER as bigint) back into a CommittedRow. */
function rowFromRecord (shape: TableShape, record: Record<string, KpiValue | Buffer>): CommittedRow {
  const { rowid, ts, ...rest } = record
  const seq = rowid as bigint
  const time = Number(ts as bigint)
  if (shape.encrypted) return { seq, name: shape.name, ts: time, columns: null, values: null, sealed: rest.data as Buffer }
  const columns = Object.keys(rest)
  return { seq, name: shape.name, ts: time, columns, values: columns.map((column) => rest[column] as KpiValue), sealed: null }
}
