import Fuse, { type FuseOperations } from 'fuse-native'

/**
 * Mount options fuse-native would drop (it passes only the `-o` options on its own list):
 * - atomic_o_trunc: O_TRUNC arrives with OPEN instead of as a separate truncate + getattr (+70% closes/s);
 * - hard_remove: unlink or rename onto an open file is passed through, not turned into .fuse_hiddenN.
 */
const EXTRA_MOUNT_OPTIONS = ['atomic_o_trunc', 'hard_remove']

class GuestfsFuse extends Fuse {
  protected override _fuseOptions (): string {
    const base = super._fuseOptions()
    return base ? `${base},${EXTRA_MOUNT_OPTIONS.join(',')}` : `-o${EXTRA_MOUNT_OPTIONS.join(',')}`
  }
}

export interface FuseMount {
  unmount (): Promise<void>
}

/** Mounts the operations; resolves once the kernel has sent INIT (the mount is usable). */
export function mountFuse (mountpoint: string, operations: FuseOperations): Promise<FuseMount> {
  const fuse = new GuestfsFuse(mountpoint, operations, {
    timeout: false, // fuse-native's per-call timer costs 8–24%; a commit is bounded by SQLite's busy_timeout
    allowOther: process.getuid?.() === 0, // applications in the VM run as other users
    fsname: 'fedvm-guestfs',
    subtype: 'fedvm',
  })
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) return reject(new Error(`cannot mount guestfs on ${mountpoint}: ${err.message}`, { cause: err }))
      resolve({
        unmount: () => new Promise((resolve, reject) => {
          fuse.unmount((err) => err ? reject(new Error(`cannot unmount ${mountpoint}: ${err.message}`, { cause: err })) : resolve())
        }),
      })
    })
  })
}
