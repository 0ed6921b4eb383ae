import { execFile } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { isFuseMounted } from './mount-table'

const run = promisify(execFile)

/**
 * A guestfs that was killed leaves its mount behind: listed in /proc/mounts, and stat fails with
 * ENOTCONN. Lazily unmount such a dead mount; refuse a mount point that a live filesystem serves.
 */
export async function recoverStaleMount (mountpoint: string, log: (line: string) => void): Promise<void> {
  const target = resolve(mountpoint)
  if (!(await isFuseMounted(target))) return
  try {
    await stat(target)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') throw err
    log(`${target}: recovering a stale mount left by a process that died`)
    await run('fusermount', ['-uz', target])
    return
  }
  throw new Error(`${target} is already mounted by a running filesystem`)
}
