import { constants } from 'node:os'

/** The errno names guestfs returns; each maps to the negative number FUSE expects. */
export type ErrnoName =
  | 'EPERM' | 'ENOENT' | 'EIO' | 'EBADF' | 'EEXIST' | 'ENOTDIR' | 'EISDIR'
  | 'EINVAL' | 'EFBIG' | 'ENOSPC' | 'ENAMETOOLONG' | 'ENOTEMPTY' | 'ENOSYS'

/** A filesystem error: carries the errno the caller of open()/close()/rename() will see. */
export class FsError extends Error {
  readonly code: ErrnoName

  constructor (code: ErrnoName, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FsError'
    this.code = code
  }

  /** The negative errno number fuse-native's callbacks take. */
  get errno (): number {
    return -constants.errno[this.code]
  }
}

/** Wraps anything thrown into an FsError, keeping the original as cause (unknown failures are EIO). */
export function toFsError (err: unknown): FsError {
  if (err instanceof FsError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new FsError('EIO', message, { cause: err })
}
