import { FsError } from '../errors'
import type { KpiDir } from '../kpi-names'
import { MAX_CONTENT_BYTES } from '../store/kpi-store'
import { pathKey } from './paths'

/**
 * One open() of a file. A handle opened for writing collects its own bytes: every open for
 * writing starts a new sample, and content must be kept per handle because RELEASE arrives
 * after close() has returned, when the next open may already be writing.
 */
export class Handle {
  private bytes: Buffer
  length = 0
  /** Written since the last flush: the next FLUSH or FSYNC commits. */
  dirty = false
  /**
   * Set once the handle was asked to hold more than a KPI file may: its sample is refused as a
   * whole at FLUSH, so no prefix of oversize content is ever committed.
   */
  refusal?: FsError

  constructor (
    readonly fd: number,
    readonly dir: KpiDir,
    readonly name: string,
    readonly staging: boolean,
    readonly writable: boolean,
    readonly append: boolean,
    initial: Buffer,
  ) {
    this.bytes = initial
    this.length = initial.length
  }

  get key (): string {
    return pathKey(this.dir, this.name)
  }

  content (): Buffer {
    return this.bytes.subarray(0, this.length)
  }

  write (data: Buffer, position: number): void {
    const at = this.append ? this.length : position
    const end = at + data.length
    if (end > MAX_CONTENT_BYTES) throw this.refuseOversize()
    this.reserve(end)
    if (at > this.length) this.bytes.fill(0, this.length, at)
    data.copy(this.bytes, at)
    this.length = Math.max(this.length, end)
    this.dirty = true
  }

  truncate (size: number): void {
    if (size > MAX_CONTENT_BYTES) throw this.refuseOversize()
    this.reserve(size)
    if (size > this.length) this.bytes.fill(0, this.length, size)
    this.length = size
    this.dirty = true
  }

  private refuseOversize (): FsError {
    this.refusal ??= new FsError('EFBIG', `content is larger than ${MAX_CONTENT_BYTES} bytes (a KPI file holds at most that)`)
    this.dirty = true
    return this.refusal
  }

  private reserve (size: number): void {
    if (size <= this.bytes.length) return
    const grown = Buffer.allocUnsafe(Math.max(size, this.bytes.length * 2, 256))
    this.bytes.copy(grown, 0, 0, this.length)
    this.bytes = grown
  }
}

/** The table of open handles; numbers start at 1 because fuse-native treats 0 as "no handle". */
export class OpenFiles {
  private readonly handles = new Map<number, Handle>()
  /** Per file, the handles open for writing: a file being written exists before its first commit. */
  private readonly writers = new Map<string, Set<Handle>>()
  private nextFd = 1

  open (dir: KpiDir, name: string, options: { staging: boolean, writable: boolean, append: boolean, initial: Buffer }): Handle {
    while (this.handles.has(this.nextFd)) this.advance()
    const handle = new Handle(this.nextFd, dir, name, options.staging, options.writable, options.append, options.initial)
    this.advance()
    this.handles.set(handle.fd, handle)
    if (handle.writable) {
      const set = this.writers.get(handle.key) ?? new Set()
      set.add(handle)
      this.writers.set(handle.key, set)
    }
    return handle
  }

  get (fd: number): Handle {
    const handle = this.handles.get(fd)
    if (!handle) throw new FsError('EBADF', `no open file with handle ${fd}`)
    return handle
  }

  release (fd: number): void {
    const handle = this.handles.get(fd)
    if (!handle) return
    this.handles.delete(fd)
    const set = this.writers.get(handle.key)
    set?.delete(handle)
    if (set && set.size === 0) this.writers.delete(handle.key)
  }

  /** The most recently opened writer of a file, if any is open. */
  latestWriter (dir: KpiDir, name: string): Handle | undefined {
    const set = this.writers.get(pathKey(dir, name))
    let latest: Handle | undefined
    for (const handle of set ?? []) latest = handle
    return latest
  }

  /** Names being written (open for writing) in a directory, committed or not. */
  namesBeingWritten (dir: KpiDir): string[] {
    const prefix = `${dir}/`
    return [...this.writers.keys()].filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length))
  }

  private advance (): void {
    this.nextFd = this.nextFd >= 0x7fffffff ? 1 : this.nextFd + 1
  }
}
