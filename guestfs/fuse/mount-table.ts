import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'

/** /proc/mounts escapes spaces, tabs, newlines and backslashes as octal. */
function unescapeMountField (field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

/** Whether a FUSE filesystem is mounted on that directory (read from /proc/mounts, never from the mount). */
export async function isFuseMounted (mountpoint: string): Promise<boolean> {
  const target = resolve(mountpoint)
  const mounts = await readFile('/proc/mounts', 'utf8')
  return mounts.split('\n').some((line) => {
    const [, where, type] = line.split(' ')
    return type !== undefined && type.startsWith('fuse') && unescapeMountField(where) === target
  })
}
