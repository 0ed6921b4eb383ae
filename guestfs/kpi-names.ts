import { FsError } from './errors'
import { foldCase } from './sql-names'

/** The two directories at the root of the mount; nothing else may exist there. */
export const KPI_DIRS = ['encrypted', 'unencrypted'] as const
export type KpiDir = typeof KPI_DIRS[number]

export function isKpiDir (name: string): name is KpiDir {
  return name === 'encrypted' || name === 'unencrypted'
}

/**
 * Staging files (the write-then-rename pattern of editors and atomic writers) are held in memory,
 * never stored: a name starting with '.', or ending in '.tmp' or '~'.
 */
export function isStagingName (name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('~')
}

const RESERVED_PREFIXES = ['_fedvm_', 'sqlite_']
// fuse-native decodes paths lossily: invalid UTF-8 arrives as U+FFFD.
const REPLACEMENT_CHARACTER = '\uFFFD'
const MAX_NAME_BYTES = 255

/** Checks that a file name may be used at all (KPI or staging). */
export function checkFileName (name: string): void {
  if (name.includes(REPLACEMENT_CHARACTER)) throw new FsError('EINVAL', 'file name is not valid UTF-8')
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new FsError('ENAMETOOLONG', 'file name is longer than 255 bytes')
}

/** Checks that a name may become a KPI table (it is not a staging name, not reserved). */
export function checkKpiName (name: string): void {
  checkFileName(name)
  const folded = foldCase(name)
  const reserved = RESERVED_PREFIXES.find((prefix) => folded.startsWith(prefix))
  if (reserved) throw new FsError('EPERM', `names starting with ${reserved} are reserved`)
}
