import { getattr, readdir, statfs } from './attributes'
import type { GuestfsState } from './guestfs-state'
import { mkdir, refuse, rename, rmdir, unlink, utimens } from './namespace'
import { create, flush, fsync, open, release } from './open-close'
import { ftruncate, read, truncate, write } from './read-write'

/**
 * The filesystem, one function per FUSE operation. Each takes the shared state and the
 * operation's arguments, and returns a value (or a promise of one) or throws an FsError.
 */
export const operations = {
  getattr,
  readdir,
  statfs,
  create,
  open,
  read,
  write,
  flush,
  fsync,
  release,
  truncate,
  ftruncate,
  unlink,
  rename,
  mkdir,
  rmdir,
  utimens,
  symlink: refuse('symlink'),
  link: refuse('link'),
  mknod: refuse('mknod'),
  chmod: refuse('chmod'),
  chown: refuse('chown'),
} satisfies Record<string, (state: GuestfsState, ...args: never[]) => unknown>

export type GuestfsOperations = typeof operations
