import { execFile } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { HypervisorError } from '../errors'

const run = promisify(execFile)

/** One image of a disk's backing chain, as `qemu-img info --output=json` reports it. */
export interface ImageInfo {
  filename: string
  format: string
  'backing-filename'?: string
  'full-backing-filename'?: string
  'backing-filename-format'?: string
}

async function qemuImg (...args: string[]): Promise<string> {
  try {
    return (await run('qemu-img', args, { maxBuffer: 1 << 22, timeout: 60_000 })).stdout
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new HypervisorError('UNSUPPORTED_VM', `qemu-img ${args[0]}: ${(e.stderr ?? e.message).trim()}`, { cause: err })
  }
}

/**
 * The files a disk reads besides itself: its backing images (a qcow2 overlay on a base image, and
 * that base's own base…), absolute paths, nearest first. A disk with no backing file has none.
 */
export async function backingFiles (disk: string): Promise<string[]> {
  const chain = JSON.parse(await qemuImg('info', '--output=json', '--backing-chain', disk)) as ImageInfo[]
  return chain.slice(1).map((image) => resolve(image.filename))
}

/**
 * At the Destination every image of the chain was copied flat into `dir`: point each overlay at its
 * base there (`rebase -u` rewrites only the header's backing path and format, no data is read).
 */
export async function relinkBackingFiles (disk: string, dir: string): Promise<void> {
  const seen = new Set<string>()
  let image = disk
  while (!seen.has(image)) {
    seen.add(image)
    const info = JSON.parse(await qemuImg('info', '--output=json', image)) as ImageInfo
    const backing = info['backing-filename']
    if (backing === undefined) return
    const local = join(dir, basename(backing))
    if (!await exists(local)) {
      // Not carried: fine when the base is shared storage this host reaches under the same path.
      if (await exists(resolve(dirname(image), backing))) return
      throw new HypervisorError('UNSUPPORTED_VM', `the base image ${basename(backing)} of ${basename(image)} did not come with it`)
    }
    if (backing !== local) {
      const format = info['backing-filename-format'] ?? (JSON.parse(await qemuImg('info', '--output=json', local)) as ImageInfo).format
      await qemuImg('rebase', '-u', '-b', local, '-F', format, image)
    }
    image = local
  }
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}
