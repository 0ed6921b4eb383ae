import { FsError } from '../errors'
import { checkFileName } from '../kpi-names'
import type { GuestfsState } from './guestfs-state'
import { commitLogged } from './open-close'
import { filePath, parsePath } from './paths'

/** Hides a KPI (its table and history stay) or drops a staging file. */
export function unlink (state: GuestfsState, path: string): void {
  const { dir, name, staging } = filePath(path)
  if (staging) {
    if (!state.staging.delete(dir, name)) throw new FsError('ENOENT', `${path} does not exist`)
    return
  }
  if (state.store.visibleFile(dir, name)) return state.store.hide(dir, name)
  if (!state.openFiles.latestWriter(dir, name)) throw new FsError('ENOENT', `${path} does not exist`)
}

/**
 * The atomic-update pattern: renaming a staging file onto a KPI name commits the staged content
 * as one row of that KPI (rename returns once it is durable, or the errno if refused, leaving the
 * staging file in place). A committed KPI keeps its name: its history belongs to it.
 */
export async function rename (state: GuestfsState, from: string, to: string): Promise<void> {
  const source = renamedFile(from)
  const target = renamedFile(to)
  if (!source.staging) throw new FsError('EPERM', `${from}: a KPI keeps its name; write the new name instead`)
  const staged = state.staging.get(source.dir, source.name)
  if (!staged) throw new FsError('ENOENT', `${from} does not exist`)
  if (target.staging) {
    checkFileName(target.name)
    state.staging.set(target.dir, target.name, staged.content)
  } else {
    await commitLogged(state, target.dir, target.name, staged.content)
  }
  state.staging.delete(source.dir, source.name)
}

/** Only files move: the two directories stay where they are, and nothing new appears at the root. */
function renamedFile (path: string): ReturnType<typeof filePath> {
  const parsed = parsePath(path)
  if (parsed.kind !== 'file') throw new FsError('EPERM', `${path}: only files inside encrypted/ and unencrypted/ can be renamed`)
  return parsed
}

export function mkdir (_state: GuestfsState, path: string): void {
  const parsed = parsePath(path)
  if (parsed.kind === 'dir') throw new FsError('EEXIST', `${path} exists`)
  throw new FsError('EPERM', `${path}: the root holds only encrypted/ and unencrypted/, and files are flat inside them`)
}

export function rmdir (_state: GuestfsState, path: string): void {
  throw new FsError('EPERM', `${path}: encrypted/ and unencrypted/ cannot be removed`)
}

/** Links, devices, owners and modes have no meaning for a KPI. */
export function refuse (operation: string) {
  return (_state: GuestfsState, path: string): void => {
    throw new FsError('EPERM', `${path}: ${operation} is not supported on a KPI filesystem`)
  }
}

/** Times are the commit times; setting them (touch) is accepted and changes nothing. */
export function utimens (state: GuestfsState, path: string): void {
  parsePath(path)
}
