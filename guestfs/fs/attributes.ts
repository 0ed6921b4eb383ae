import { constants } from 'node:fs'
import { FsError } from '../errors'
import { KPI_DIRS, type KpiDir } from '../kpi-names'
import type { GuestfsState } from './guestfs-state'
import { parsePath } from './paths'

/** The fields of a stat result that fuse-native reads. */
export interface Stat {
  mode: number
  size: number
  nlink: number
  uid: number
  gid: number
  mtime: number
  atime: number
  ctime: number
}

// Everyone in the VM may report KPIs (the mount is allow_other without default_permissions).
const DIR_MODE = constants.S_IFDIR | 0o777
const FILE_MODE = constants.S_IFREG | 0o666
const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0
const mountedAt = Date.now()

function stat (mode: number, size: number, timeMs: number): Stat {
  return { mode, size, nlink: mode === DIR_MODE ? 2 : 1, uid, gid, mtime: timeMs, atime: timeMs, ctime: timeMs }
}

/** A file's size is what the open writer has written so far, else its last committed content. */
export function getattr (state: GuestfsState, path: string): Stat {
  const parsed = parsePath(path)
  if (parsed.kind === 'root' || parsed.kind === 'dir') return stat(DIR_MODE, 4096, mountedAt)
  if (parsed.kind === 'root-entry') throw new FsError('ENOENT', `${path} does not exist`)
  const { dir, name } = parsed
  const writer = state.openFiles.latestWriter(dir, name)
  const staged = parsed.staging ? state.staging.get(dir, name) : undefined
  const committed = parsed.staging ? undefined : state.store.visibleFile(dir, name)
  if (writer) return stat(FILE_MODE, writer.length, staged?.mtimeMs ?? committed?.ts ?? Date.now())
  if (staged) return stat(FILE_MODE, staged.content.length, staged.mtimeMs)
  if (committed) return stat(FILE_MODE, committed.content.length, committed.ts)
  throw new FsError('ENOENT', `${path} does not exist`)
}

export function readdir (state: GuestfsState, path: string): string[] {
  const parsed = parsePath(path)
  if (parsed.kind === 'root') return [...KPI_DIRS]
  if (parsed.kind !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`)
  return listDir(state, parsed.dir)
}

function listDir (state: GuestfsState, dir: KpiDir): string[] {
  const names = new Set(state.store.listVisible(dir).map((file) => file.name))
  for (const name of state.staging.names(dir)) names.add(name)
  for (const name of state.openFiles.namesBeingWritten(dir)) names.add(name)
  return [...names]
}

export function statfs (): Record<string, number> {
  return { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255 }
}
