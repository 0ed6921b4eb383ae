import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import { FsError, toFsError } from '../errors'
import { parseKpiCsv, type KpiSample } from '../csv/parse-kpi-csv'
import { checkKpiName, type KpiDir } from '../kpi-names'
import { foldCase } from '../sql-names'
import { AckedPosition } from './acked-position'
import { KpiTables, type CommittedRow } from './kpi-tables'
import { storeError } from './sqlite-errno'
import { databaseEpoch, prepareDatabase, type SyncMode } from './schema'
import { WalCheckpoints, type WalCheckpointOptions } from './wal-checkpoints'
import { SEALED_BOX_OVERHEAD } from '../../protocol/crypto/sealed-box-size'

export type { CommittedRow }

/** A KPI file as the filesystem shows it: the bytes and time of its last commit. */
export interface KpiFile {
  readonly name: string
  readonly dir: KpiDir
  visible: boolean
  ts: number
  content: Buffer
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
  /** When the WAL is copied back into the database file (see wal-checkpoints.ts). */
  checkpoints?: WalCheckpointOptions
  log?: (line: string) => void
  /** Most rows grouped into one transaction. */
  maxBatch?: number
}

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
  private readonly acked: AckedPosition
  private readonly files = new Map<string, KpiFile>()
  private readonly tables: KpiTables
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

  private readonly checkpoints: WalCheckpoints

  private constructor (private readonly db: Db, options: KpiStoreOptions) {
    this.maxBatch = options.maxBatch ?? 512
    this.tables = new KpiTables(db)
    this.upsertFile = db.prepare(`INSERT INTO _fedvm_files (name, encrypted, visible, ts, content) VALUES (?, ?, 1, ?, ?)
      ON CONFLICT (name) DO UPDATE SET visible = 1, ts = excluded.ts, content = excluded.content`)
    this.hideFile = db.prepare('UPDATE _fedvm_files SET visible = 0 WHERE name = ?')
    this.acked = new AckedPosition(db)
    this.writeBatch = db.transaction((batch: QueuedCommit[], ts: number) => {
      let seq = this.lastSeq
      for (const item of batch) this.writeRow(item, ts, ++seq)
      this.acked.persistIfDue()
    })
    this.epoch = databaseEpoch(db)
    this.loadFiles()
    this.checkpoints = new WalCheckpoints(db, options.log ?? (() => {}), options.checkpoints)
  }

  static open (file: string, options: KpiStoreOptions = {}): KpiStore {
    const db = new Database(file)
    try {
      prepareDatabase(db, options.sync ?? 'normal')
      return new KpiStore(db, options)
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

  /** Counts a sample refused before it reached the store (the filesystem refused oversize content at write()). */
  countRefusal (): void {
    this.stats.refused++
  }

  /** The sequence of the last committed row (0 when there is none). */
  get lastCommittedSeq (): bigint {
    return this.lastSeq
  }

  /** The highest row a feed host acknowledged (see acked-position.ts). */
  get acknowledged (): bigint {
    return this.acked.value
  }

  /** A host made rows up to `seq` durable; refused beyond the last committed row (no host can have it). */
  acknowledge (seq: bigint): void {
    if (seq > this.lastSeq) throw new Error(`ack of row ${seq} beyond the last committed row ${this.lastSeq}`)
    this.acked.advance(seq)
  }

  /** Calls listener with every row once it is durable, in commit order; returns the unsubscribe function. */
  onCommit (listener: (row: CommittedRow) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Up to `limit` committed rows after `after`, in commit order, read back from the tables (catch-up). */
  rowsAfter (after: bigint, limit: number): CommittedRow[] {
    return this.tables.rowsAfter(after, limit)
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
    this.acked.persist()
    this.checkpoints.stop()
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
      this.checkpoints.committed()
      for (const item of batch) this.settle(item, ts)
      return
    } catch {
      this.loadShapes()
    }
    for (const item of batch) {
      try {
        this.writeBatch([item], ts)
        this.checkpoints.committed()
        this.settle(item, ts)
      } catch (err) {
        this.loadShapes()
        this.stats.refused++
        item.reject(storeError(err))
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
    const encrypted = item.dir === 'encrypted'
    item.columns = this.tables.insert(item.name, encrypted, seq, ts, item.sample ?? { data: item.content })
    this.upsertFile.run(item.name, encrypted ? 1 : 0, BigInt(ts), item.content)
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
    const tables = [...this.files.values()].map((file) => ({ name: file.name, encrypted: file.dir === 'encrypted' }))
    const maxSeq = this.tables.load(tables)
    if (maxSeq > this.lastSeq) this.lastSeq = maxSeq
  }
}
