import { constants } from 'node:fs'
import { FsError } from '../errors'
import { checkFileName, type KpiDir } from '../kpi-names'
import type { GuestfsState } from './guestfs-state'
import { filePath } from './paths'

const EMPTY = Buffer.alloc(0)
// Not exported by node:fs: the two bits that say read-only, write-only or read-write.
const O_ACCMODE = 3

/** CREATE: a new file; the name must be usable now, so a refused name fails at open(), not at close(). */
export function create (state: GuestfsState, path: string): number {
  const { dir, name, staging } = filePath(path)
  if (staging) checkFileName(name)
  else state.store.checkWritable(dir, name)
  return state.openFiles.open(dir, name, { staging, writable: true, append: false, initial: EMPTY }).fd
}

/**
 * OPEN: reading snapshots the last committed content; writing starts a new sample (a KPI's old
 * content is never a starting point, so truncating or appending makes no difference). Staging
 * files behave like plain files. The kernel may send OPEN for a name it still caches from an
 * earlier refused CREATE, so a writable open of a new but valid name is accepted too.
 */
export function open (state: GuestfsState, path: string, flags: number): number {
  const { dir, name, staging } = filePath(path)
  const writable = (flags & O_ACCMODE) !== constants.O_RDONLY
  const append = (flags & constants.O_APPEND) !== 0
  const truncate = (flags & constants.O_TRUNC) !== 0
  if (staging) {
    const staged = state.staging.get(dir, name)
    if (!staged && !writable) throw new FsError('ENOENT', `${path} does not exist`)
    if (!staged) checkFileName(name)
    const initial = staged && !(writable && truncate) ? Buffer.from(staged.content) : EMPTY
    return state.openFiles.open(dir, name, { staging, writable, append, initial }).fd
  }
  if (writable) {
    state.store.checkWritable(dir, name)
    return state.openFiles.open(dir, name, { staging, writable, append, initial: EMPTY }).fd
  }
  const committed = state.store.visibleFile(dir, name)
  if (!committed) {
    const writer = state.openFiles.latestWriter(dir, name)
    if (!writer) throw new FsError('ENOENT', `${path} does not exist`)
  }
  return state.openFiles.open(dir, name, { staging, writable, append: false, initial: committed?.content ?? EMPTY }).fd
}

/** FLUSH (every close()) and FSYNC commit what the handle wrote; the caller's close() gets the errno. */
export async function flush (state: GuestfsState, _path: string, fd: number): Promise<void> {
  const handle = state.openFiles.get(fd)
  if (!handle.writable || !handle.dirty) return
  handle.dirty = false
  if (handle.refusal) return refuseLogged(state, handle.dir, handle.name, handle.refusal)
  const content = Buffer.from(handle.content())
  if (handle.staging) {
    state.staging.set(handle.dir, handle.name, content)
    return
  }
  await commitLogged(state, handle.dir, handle.name, content)
}

export function fsync (state: GuestfsState, path: string, _datasync: number, fd: number): Promise<void> {
  return flush(state, path, fd)
}

export function release (state: GuestfsState, _path: string, fd: number): void {
  state.openFiles.release(fd)
}

/** Commits one sample; a refusal is logged with its reason (never the content, which may be sealed). */
export async function commitLogged (state: GuestfsState, dir: KpiDir, name: string, content: Buffer): Promise<void> {
  try {
    await state.store.commit(dir, name, content)
  } catch (err) {
    logRefusal(state, dir, name, err)
    throw err
  }
}

/** A sample the filesystem refused before it reached the store (it was oversize): counted and logged like the store's refusals. */
function refuseLogged (state: GuestfsState, dir: KpiDir, name: string, refusal: FsError): never {
  state.store.countRefusal()
  logRefusal(state, dir, name, refusal)
  throw refusal
}

function logRefusal (state: GuestfsState, dir: KpiDir, name: string, err: unknown): void {
  const code = err instanceof FsError ? err.code : 'EIO'
  const reason = err instanceof Error ? err.message : String(err)
  state.log(`refused ${dir}/${name} (${code}): ${reason} [refused so far: ${state.store.stats.refused}]`)
}
