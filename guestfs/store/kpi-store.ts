import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import { FsError, toFsError } from '../errors'
import { parseKpiCsv, type KpiSample } from '../csv/parse-kpi-csv'
import type { KpiValue } from '../csv/typed-value'
import { checkKpiName, type KpiDir } from '../kpi-names'
import { foldCase, quoteIdentifier } from '../sql-names'
import { Checkpointer } from './checkpointer'
import { databaseEpoch, prepareDatabase, type SyncMode } from './schema'

/** A KPI file as the filesystem shows it: the bytes and time of its last commit. */
export interface KpiFile {
  readonly name: string
  readonly dir: KpiDir
  visible: boolean
  ts: number
  content: Buffer
}

/** The columns a KPI table has, keyed by their case-folded name (SQLite ignores ASCII case). */
interface TableShape {
  readonly name: string
  readonly encrypted: boolean
  readonly columns: Map<string, string>
}

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

interface QueuedCommit {
  readonly dir: KpiDir
  readonly name: string
  readonly content: Buffer
  readonly sample: KpiSample | null
  /** Filled when written: the table columns the sample's values went into. */
  columns?: string[]
  resolve: (ts: number) => void
  reject: (err: FsError) => void
}

export interface KpiStoreOptions {
  sync?: SyncMode
  /** Checkpoint the WAL on a background thread instead of inside commits (needs the compiled worker). */
  backgroundCheckpoints?: boolean
  log?: (line: string) => void
  /** Most rows grouped into one transaction. */
  maxBatch?: number
}

/** libsodium's crypto_box_SEALBYTES: an ephemeral public key and a MAC. Nothing shorter is a sealed box. */
const SEALED_BOX_OVERHEAD = 48
/** Largest file content accepted; KPI files are one or two lines. */
export const MAX_CONTENT_BYTES = 1024 * 1024

/**
 * The KPI database: one table per file name, a timestamped row per commit. Commits arriving
 * together are grouped into one transaction (group commit); each still becomes its own row and
 * its promise settles only once that transaction is durable. Never imports FUSE.
 */
export class KpiStore {
  readonly stats = { committed: 0, refused: 0 }
  /** This database's identity, sent with the feed so a host notices a replaced database. */
  readonly epoch: string
  private readonly files = new Map<string, KpiFile>()
  private readonly shapes = new Map<string, TableShape>()
  private readonly inserts = new Map<string, Statement>()
  private readonly upsertFile: Statement
  private readonly hideFile: Statement
  private readonly writeBatch: (batch: QueuedCommit[], ts: number) => void
  private readonly maxBatch: number
  private readonly listeners = new Set<(row: CommittedRow) => void>()
  private queue: QueuedCommit[] = []
  private flushScheduled = false
  private lastTs = 0
  /** The last rowid handed out: one sequence across all KPI tables, in commit order. */
  private lastSeq = 0n

  private readonly checkpointer?: Checkpointer

  private constructor (private readonly db: Db, file: string, options: KpiStoreOptions) {
    this.maxBatch = options.maxBatch ?? 512
    this.upsertFile = db.prepare(`INSERT INTO _fedvm_files (name, encrypted, visible, ts, content) VALUES (?, ?, 1, ?, ?)
      ON CONFLICT (name) DO UPDATE SET visible = 1, ts = excluded.ts, content = excluded.content`)
    this.hideFile = db.prepare('UPDATE _fedvm_files SET visible = 0 WHERE name = ?')
    this.writeBatch = db.transaction((batch: QueuedCommit[], ts: number) => {
      let seq = this.lastSeq
      for (const item of batch) this.writeRow(item, ts, ++seq)
    })
    this.epoch = databaseEpoch(db)
    this.loadFiles()
    if (options.backgroundCheckpoints) this.checkpointer = new Checkpointer(file, options.log ?? (() => {}))
  }

  static open (file: string, options: KpiStoreOptions = {}): KpiStore {
    const db = new Database(file)
    try {
      prepareDatabase(db, options.sync ?? 'normal', options.backgroundCheckpoints ?? false)
      return new KpiStore(db, file, options)
    } catch (err) {
      db.close()
      throw err
    }
  }

  /** The listed file of exactly that name in that directory. */
  visibleFile (dir: KpiDir, name: string): KpiFile | undefined {
    const file = this.files.get(foldCase(name))
    return file && file.visible && file.name === name && file.dir === dir ? file : undefined
  }

  listVisible (dir: KpiDir): KpiFile[] {
    return [...this.files.values()].filter((file) => file.visible && file.dir === dir)
  }

  /**
   * Refuses a name that cannot become (or continue) this KPI: reserved or invalid names, and names
   * taken, in any ASCII case, by a KPI of another spelling or in the other directory.
   */
  checkWritable (dir: KpiDir, name: string): void {
    checkKpiName(name)
    const owner = this.files.get(foldCase(name))
    if (owner && (owner.name !== name || owner.dir !== dir)) {
      throw new FsError('EEXIST', `"${owner.name}" in ${owner.dir}/ already owns this name (names ignore ASCII case and span both directories)`)
    }
  }

  /** Stores one sample; resolves with its commit time (ms) once durable, rejects with the errno if refused. */
  commit (dir: KpiDir, name: string, content: Buffer): Promise<number> {
    let sample: KpiSample | null
    try {
      this.checkWritable(dir, name)
      sample = this.checkContent(dir, content)
    } catch (err) {
      this.stats.refused++
      return Promise.reject(toFsError(err))
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ dir, name, content, sample, resolve, reject })
      if (!this.flushScheduled) {
        this.flushScheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** The sequence of the last committed row (0 when there is none). */
  get lastCommittedSeq (): bigint {
    return this.lastSeq
  }

  /** Calls listener with every row once it is durable, in commit order; returns the unsubscribe function. */
  onCommit (listener: (row: CommittedRow) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Up to `limit` committed rows after `after`, in commit order, read back from the tables (catch-up). */
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

  /** Hides a file from listings; its table and history stay, and writing the name again continues them. */
  hide (dir: KpiDir, name: string): void {
    const file = this.visibleFile(dir, name)
    if (!file) throw new FsError('ENOENT', `no KPI "${name}" in ${dir}/`)
    this.hideFile.run(file.name)
    file.visible = false
  }

  /** Commits whatever is queued, checkpoints the WAL into the database file, and closes it. */
  async close (): Promise<void> {
    this.flush()
    await this.checkpointer?.stop()
    this.db.pragma('wal_checkpoint(TRUNCATE)')
    this.db.close()
  }

  private checkContent (dir: KpiDir, content: Buffer): KpiSample | null {
    if (content.length > MAX_CONTENT_BYTES) throw new FsError('EFBIG', `content is larger than ${MAX_CONTENT_BYTES} bytes`)
    if (dir === 'unencrypted') return parseKpiCsv(content)
    if (content.length < SEALED_BOX_OVERHEAD) {
      throw new FsError('EINVAL', `${content.length} bytes is too short for a sealed box (at least ${SEALED_BOX_OVERHEAD})`)
    }
    return null
  }

  private flush (): void {
    this.flushScheduled = false
    while (this.queue.length > 0) this.commitBatch(this.queue.splice(0, this.maxBatch))
  }

  /** One transaction for the batch; if it fails, each row is retried alone so only the bad one is refused. */
  private commitBatch (batch: QueuedCommit[]): void {
    const ts = this.nextTimestamp()
    try {
      this.writeBatch(batch, ts)
      for (const item of batch) this.settle(item, ts)
      return
    } catch {
      this.loadShapes()
    }
    for (const item of batch) {
      try {
        this.writeBatch([item], ts)
        this.settle(item, ts)
      } catch (err) {
        this.loadShapes()
        this.stats.refused++
        item.reject(toFsError(err))
      }
    }
  }

  private settle (item: QueuedCommit, ts: number): void {
    const seq = ++this.lastSeq
    this.files.set(foldCase(item.name), { name: item.name, dir: item.dir, visible: true, ts, content: item.content })
    this.stats.committed++
    item.resolve(ts)
    if (this.listeners.size === 0) return
    const row: CommittedRow = item.sample
      ? { seq, name: item.name, ts, columns: item.columns ?? item.sample.columns, values: item.sample.values, sealed: null }
      : { seq, name: item.name, ts, columns: null, values: null, sealed: item.content }
    for (const listener of this.listeners) listener(row)
  }

  private writeRow (item: QueuedCommit, ts: number, seq: bigint): void {
    const shape = this.tableFor(item)
    const columns = item.sample ? this.ensureColumns(shape, item.sample.columns) : ['data']
    const values = item.sample ? item.sample.values : [item.content]
    this.insertFor(shape.name, columns).run(seq, BigInt(ts), ...values)
    item.columns = columns
    this.upsertFile.run(item.name, shape.encrypted ? 1 : 0, BigInt(ts), item.content)
  }

  private tableFor (item: QueuedCommit): TableShape {
    const encrypted = item.dir === 'encrypted'
    const folded = foldCase(item.name)
    const existing = this.shapes.get(folded)
    if (existing) {
      if (existing.name !== item.name || existing.encrypted !== encrypted) {
        throw new FsError('EEXIST', `"${existing.name}" already owns this name`)
      }
      return existing
    }
    const table = quoteIdentifier(item.name)
    this.db.exec(encrypted
      ? `CREATE TABLE ${table} (ts INTEGER NOT NULL, data BLOB NOT NULL)`
      : `CREATE TABLE ${table} (ts INTEGER NOT NULL)`)
    const shape: TableShape = { name: item.name, encrypted, columns: new Map([['ts', 'ts']]) }
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

  private nextTimestamp (): number {
    this.lastTs = Math.max(Date.now(), this.lastTs)
    return this.lastTs
  }

  private loadFiles (): void {
    const rows = this.db.prepare('SELECT name, encrypted, visible, ts, content FROM _fedvm_files').all() as Array<{
      name: string, encrypted: number, visible: number, ts: number, content: Buffer
    }>
    for (const row of rows) {
      const dir: KpiDir = row.encrypted ? 'encrypted' : 'unencrypted'
      this.files.set(foldCase(row.name), { name: row.name, dir, visible: row.visible === 1, ts: Number(row.ts), content: row.content })
      this.lastTs = Math.max(this.lastTs, Number(row.ts))
    }
    this.loadShapes()
  }

  /** Reads every KPI table's columns back from SQLite (after a rollback undid an ALTER or CREATE). */
  private loadShapes (): void {
    this.shapes.clear()
    this.inserts.clear()
    for (const file of this.files.values()) {
      const info = this.db.prepare(`PRAGMA table_info(${quoteIdentifier(file.name)})`).all() as Array<{ name: string }>
      if (info.length === 0) continue
      const columns = new Map(info.map((column) => [foldCase(column.name), column.name]))
      this.shapes.set(foldCase(file.name), { name: file.name, encrypted: file.dir === 'encrypted', columns })
      const maxRowid = this.db.prepare(`SELECT max(rowid) FROM ${quoteIdentifier(file.name)}`).safeIntegers().pluck().get() as bigint | null
      if (maxRowid !== null && maxRowid > this.lastSeq) this.lastSeq = maxRowid
    }
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
