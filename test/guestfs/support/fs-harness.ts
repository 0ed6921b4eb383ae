import { mkdtemp, rm } from 'node:fs/promises'
import { constants } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createGuestfsState, type GuestfsState } from '../../../guestfs/fs/guestfs-state'
import { operations } from '../../../guestfs/fs/operations'
import { KpiStore } from '../../../guestfs/store/kpi-store'
import type { Teardownable } from '../../support/teardownable'

/**
 * guestfs's operations called as FUSE would call them, without a mount: the real store on a
 * temporary SQLite file, the state the adapter would pass, and a second read-only connection to
 * check what was stored. Each case runs in milliseconds.
 */
export class FsHarness {
  private constructor (readonly state: GuestfsState, readonly store: KpiStore, private readonly dbFile: string, readonly logLines: string[]) {}

  static async create (t: Teardownable): Promise<FsHarness> {
    const dir = await mkdtemp(join(tmpdir(), 'fedvm-fs-test-'))
    const dbFile = join(dir, 'kpi.db')
    const store = KpiStore.open(dbFile)
    const lines: string[] = []
    const harness = new FsHarness(createGuestfsState(store, (line) => lines.push(line)), store, dbFile, lines)
    t.teardown(async () => {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    })
    return harness
  }

  /** open(path, O_WRONLY|O_CREAT|O_TRUNC) as the kernel sends it: CREATE for a name it does not know, else OPEN. */
  openForWrite (path: string): number {
    try {
      operations.getattr(this.state, path)
    } catch {
      return operations.create(this.state, path)
    }
    return operations.open(this.state, path, constants.O_WRONLY | constants.O_TRUNC)
  }

  /** open + write + close (FLUSH, then RELEASE): resolves when close() would return, rejects with its FsError. */
  async writeFile (path: string, content: string | Buffer): Promise<void> {
    const fd = this.openForWrite(path)
    try {
      const bytes = typeof content === 'string' ? Buffer.from(content) : content
      operations.write(this.state, path, fd, bytes, bytes.length, 0)
      await operations.flush(this.state, path, fd)
    } finally {
      operations.release(this.state, path, fd)
    }
  }

  /** open(O_RDONLY) + read everything + close. */
  readFile (path: string): string {
    const fd = operations.open(this.state, path, constants.O_RDONLY)
    try {
      const { size } = operations.getattr(this.state, path)
      const buffer = Buffer.alloc(size + 16)
      const n = operations.read(this.state, path, fd, buffer, buffer.length, 0)
      return buffer.subarray(0, n).toString()
    } finally {
      operations.release(this.state, path, fd)
    }
  }

  query<T = Record<string, unknown>> (sql: string, ...params: unknown[]): T[] {
    const db = new Database(this.dbFile, { readonly: true })
    try {
      return db.prepare(sql).all(...params) as T[]
    } finally {
      db.close()
    }
  }

  kpiTables (): string[] {
    return this.query<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_fedvm\\_%' ESCAPE '\\' ORDER BY name").map((row) => row.name)
  }
}
