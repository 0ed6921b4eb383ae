import { execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { isFuseMounted as isMounted } from '../../guestfs/fuse/mount-table'
import { distFile, FEDVM_JS } from './dist-paths'
import { FsWorker } from './fs-worker-client'
import type { Teardownable } from './teardownable'

type GuestfsProcessModule = typeof import('../../guestfs/guestfs-process')
type GuestfsProcess = Awaited<ReturnType<GuestfsProcessModule['startGuestfsProcess']>>

const execFileAsync = promisify(execFile)

/** The compiled module: it starts dist/packaging/bin/fedvm.js relative to itself, so the source copy cannot be used. */
function guestfsProcessModule (): GuestfsProcessModule {
  return require(distFile('guestfs', 'guestfs-process.js')) as GuestfsProcessModule
}

/** The part of a tap test this helper needs. */
export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ShellResult {
  code: number
  stdout: string
  stderr: string
}

export type KpiDir = 'encrypted' | 'unencrypted'

/** Whether a FUSE filesystem is mounted there, read from /proc/mounts (never from the mount itself). */
export { isMounted }

const closed = new WeakMap<ChildProcess, Promise<ExitStatus>>()

/** Resolves once the child has exited and its output is fully read ('close', not 'exit': the log's last lines come after 'exit'). */
export function watchExit (child: ChildProcess): Promise<ExitStatus> {
  let status = closed.get(child)
  if (!status) {
    status = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
    closed.set(child, status)
  }
  return status
}

/** Runs `node dist/packaging/bin/fedvm.js ARGS` (stdin from `input`), never throwing on a non-zero exit. */
export async function runFedvm (args: string[], input?: Buffer | string): Promise<{ code: number, stdout: Buffer, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [FEDVM_JS(), ...args], { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      if (err && typeof err.code !== 'number') return reject(err)
      resolve({ code, stdout, stderr: stderr.toString('utf8') })
    })
    child.stdin?.end(input ?? '')
  })
}

/**
 * A guestfs mounted for one test: its own temporary directory (mount point + database), served
 * by a child `fedvm guestfs mount` process, with fs-workers and a shell to act as applications and
 * read-only SQLite access to check what was stored. Everything is undone in t.teardown, also on failure.
 */
export class TestMount {
  private readonly processes: GuestfsProcess[] = []
  private readonly workers: FsWorker[] = []
  readonly mountpoint: string
  readonly dbFile: string

  private constructor (readonly dir: string, mountName: string) {
    this.mountpoint = join(dir, mountName)
    this.dbFile = join(dir, 'kpi.db')
  }

  static async create (t: Teardownable, options: { mountName?: string, extraArgs?: string[] } = {}): Promise<TestMount> {
    const dir = await mkdtemp(join(tmpdir(), 'fedvm-guestfs-test-'))
    const mount = new TestMount(dir, options.mountName ?? 'kpi')
    t.teardown(() => mount.destroy())
    void mount.app // its node process starts while guestfs mounts
    await mount.start(options.extraArgs)
    return mount
  }

  /** The guestfs process serving the mount now (the latest one started). */
  get guestfs (): GuestfsProcess {
    const current = this.processes[this.processes.length - 1]
    if (!current) throw new Error('guestfs was never started')
    return current
  }

  /** Mounts (again) on the same mount point and database. */
  async start (extraArgs: string[] = []): Promise<void> {
    const guestfs = await guestfsProcessModule().startGuestfsProcess(this.mountpoint, this.dbFile, extraArgs)
    watchExit(guestfs.child)
    this.processes.push(guestfs)
  }

  /** Sends a signal to the serving process and waits for it to exit. */
  async signal (signal: NodeJS.Signals): Promise<ExitStatus> {
    const child = this.guestfs.child
    child.kill(signal)
    return watchExit(child)
  }

  /** Everything the guestfs processes of this test wrote to stderr (their logs). */
  log (): string {
    return this.processes.map((process) => process.log()).join('')
  }

  /**
   * The log lines that match, once there are at least `count` of them: the log arrives on a pipe
   * of its own, so it may trail the reply an application got by a few milliseconds.
   */
  async logLines (pattern: RegExp, count: number, timeoutMs = 3000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const lines = this.log().split('\n').filter((line) => pattern.test(line))
      if (lines.length >= count || Date.now() > deadline) return lines
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  path (dir: KpiDir, name: string): string {
    return join(this.mountpoint, dir, name)
  }

  private sharedWorker: FsWorker | undefined

  /** One fs-worker child shared by the calls of a test (started on first use). */
  get app (): FsWorker {
    this.sharedWorker ??= this.worker()
    return this.sharedWorker
  }

  /** A new fs-worker child, stopped at teardown before the mount goes away. */
  worker (): FsWorker {
    const worker = FsWorker.start()
    this.workers.push(worker)
    return worker
  }

  /** bash -c SCRIPT in the mount point, like an application using shell redirection. */
  async sh (script: string, env: Record<string, string> = {}): Promise<ShellResult> {
    try {
      const { stdout, stderr } = await execFileAsync('bash', ['-c', script], { cwd: this.mountpoint, env: { ...process.env, ...env } })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number, stdout?: string, stderr?: string }
      if (typeof e.code !== 'number') throw err
      return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }

  /** Runs a query on a read-only connection to the database (on a normal disk, not on the mount). */
  query<T = Record<string, unknown>> (sql: string, ...params: unknown[]): T[] {
    const db = new Database(this.dbFile, { readonly: true, fileMustExist: true })
    try {
      db.defaultSafeIntegers(false)
      return db.prepare(sql).all(...params) as T[]
    } finally {
      db.close()
    }
  }

  /** The KPI tables (everything but SQLite's and fedvm's internal ones). */
  kpiTables (): string[] {
    return this.query<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_fedvm\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
      .map((row) => row.name)
  }

  hasTable (name: string): boolean {
    return this.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", name).length === 1
  }

  /** Rows of a KPI table in insertion order (0 rows if the table does not exist). */
  rows (table: string): Array<Record<string, unknown>> {
    if (!this.hasTable(table)) return []
    return this.query(`SELECT * FROM ${quoteIdentifier(table)} ORDER BY rowid`)
  }

  rowCount (table: string): number {
    return this.rows(table).length
  }

  /** Rows of every KPI table: the proof that a refused write stored nothing anywhere. */
  totalRows (): number {
    return this.kpiTables().reduce((sum, table) => sum + this.rowCount(table), 0)
  }

  columns (table: string): Array<{ name: string, type: string, notnull: number }> {
    return this.query(`PRAGMA table_info(${quoteIdentifier(table)})`)
  }

  /** Stops the workers, unmounts (SIGTERM, then SIGKILL and a lazy unmount), removes the directory. */
  private async destroy (): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()))
    for (const guestfs of this.processes) {
      const child = guestfs.child
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const stopped = await Promise.race([watchExit(child), new Promise((resolve) => setTimeout(resolve, 5000, null))])
        if (stopped === null) {
          child.kill('SIGKILL')
          await watchExit(child)
        }
      }
    }
    if (await isMounted(this.mountpoint)) await execFileAsync('fusermount', ['-uz', this.mountpoint])
    await rm(this.dir, { recursive: true, force: true })
  }
}

export function quoteIdentifier (name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
