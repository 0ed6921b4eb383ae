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
  /** The catch-up read of each table, prepared once (a feed that fell behind reads every table per page). */
  private readonly reads = new Map<string, Statement>()

  /** Most columns SQLite allows in a table (ts included): checked before any DDL, so a too-wide sample costs nothing. */
  private readonly maxColumns: number

  constructor (private readonly db: Db) {
    this.maxColumns = columnLimit(db)
  }

  /** Reads the named tables' columns from SQLite; returns the largest rowid found (0 when none). */
  load (tables: ReadonlyArray<{ name: string, encrypted: boolean }>): bigint {
    this.shapes.clear()
    this.inserts.clear()
    this.reads.clear()
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
    const shape = this.tableFor(name, encrypted, 'data' in sample ? [] : sample.columns)
    const columns = 'data' in sample ? ['data'] : this.ensureColumns(shape, sample.columns)
    const values = 'data' in sample ? [sample.data] : sample.values
    this.insertFor(shape.name, columns).run(seq, BigInt(ts), ...values)
    return columns
  }

  /** Up to `limit` rows after `after` from all tables, in commit order (the KPI feed's catch-up). */
  rowsAfter (after: bigint, limit: number): CommittedRow[] {
    const rows: CommittedRow[] = []
    for (const shape of this.shapes.values()) {
      let read = this.reads.get(shape.name)
      if (!read) {
        read = this.db.prepare(`SELECT rowid AS "rowid", * FROM ${quoteIdentifier(shape.name)} WHERE rowid > ? ORDER BY rowid LIMIT ?`).safeIntegers()
        this.reads.set(shape.name, read)
      }
      for (const record of read.all(after, BigInt(limit)) as Array<Record<string, KpiValue | Buffer>>) {
        rows.push(rowFromRecord(shape, record))
      }
    }
    rows.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))
    return rows.slice(0, limit)
  }

  /** The table's shape; a new unencrypted table is created with the first sample's columns in one statement. */
  private tableFor (name: string, encrypted: boolean, columns: string[]): TableShape {
    const folded = foldCase(name)
    const existing = this.shapes.get(folded)
    if (existing) {
      if (existing.name !== name || existing.encrypted !== encrypted) {
        throw new FsError('EEXIST', `"${existing.name}" already owns this name`)
      }
      return existing
    }
    const table = quoteIdentifier(name)
    const shape: TableShape = { name, encrypted, columns: new Map([['ts', 'ts']]) }
    if (encrypted) {
      this.db.exec(`CREATE TABLE ${table} (ts INTEGER NOT NULL, data BLOB NOT NULL)`)
      shape.columns.set('data', 'data')
    } else {
      this.checkWidth(1 + columns.length)
      this.db.exec(`CREATE TABLE ${table} (${['ts INTEGER NOT NULL', ...columns.map(quoteIdentifier)].join(', ')})`)
      for (const column of columns) shape.columns.set(foldCase(column), column)
    }
    this.shapes.set(folded, shape)
    return shape
  }

  /** Maps the sample's columns onto the table's (ignoring ASCII case) and adds the new ones (older rows read NULL). */
  private ensureColumns (shape: TableShape, columns: string[]): string[] {
    const added = columns.filter((column) => !shape.columns.has(foldCase(column)))
    if (added.length > 0) this.checkWidth(shape.columns.size + added.length)
    for (const column of added) {
      this.db.exec(`ALTER TABLE ${quoteIdentifier(shape.name)} ADD COLUMN ${quoteIdentifier(column)}`)
      shape.columns.set(foldCase(column), column)
    }
    return columns.map((column) => shape.columns.get(foldCase(column)) as string)
  }

  private checkWidth (columns: number): void {
    if (columns > this.maxColumns) {
      throw new FsError('EINVAL', `the sample needs ${columns} columns (ts included): more than a KPI table can hold (SQLite allows ${this.maxColumns})`)
    }
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

/** SQLite's SQLITE_MAX_COLUMN as this build was compiled (compile_options lists it when set), else its documented default. */
function columnLimit (db: Db): number {
  const options = db.pragma('compile_options', { simple: false }) as Array<{ compile_options: string }>
  const setting = options.map((row) => /^MAX_COLUMN=(\d+)$/.exec(row.compile_options)).find((match) => match !== null)
  return setting ? Number(setting[1]) : 2000
}
