import { FsError } from '../errors'
import { isKpiDir, isStagingName, type KpiDir } from '../kpi-names'

/** What a FUSE path names: the root, one of the two directories, a file in one, or a name at the root. */
export type ParsedPath =
  | { kind: 'root' }
  | { kind: 'dir', dir: KpiDir }
  | { kind: 'file', dir: KpiDir, name: string, staging: boolean }
  | { kind: 'root-entry', name: string }

/** Splits '/unencrypted/users' into its parts; anything deeper than a file in a directory does not exist. */
export function parsePath (path: string): ParsedPath {
  if (path === '/') return { kind: 'root' }
  const parts = path.slice(1).split('/')
  const [first, name] = parts
  if (parts.length === 1) return isKpiDir(first) ? { kind: 'dir', dir: first } : { kind: 'root-entry', name: first }
  if (parts.length === 2 && isKpiDir(first)) return { kind: 'file', dir: first, name, staging: isStagingName(name) }
  throw new FsError('ENOENT', `${path}: files are flat inside encrypted/ and unencrypted/`)
}

/** The path as a file in one of the directories, or the errno a create/rename there gets. */
export function filePath (path: string): Extract<ParsedPath, { kind: 'file' }> {
  const parsed = parsePath(path)
  if (parsed.kind === 'file') return parsed
  if (parsed.kind === 'root-entry') throw new FsError('EPERM', `${path}: the root holds only encrypted/ and unencrypted/`)
  throw new FsError('EISDIR', `${path} is a directory`)
}

export function pathKey (dir: KpiDir, name: string): string {
  return `${dir}/${name}`
}
