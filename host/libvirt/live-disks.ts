/**
 * The disks a live migration copies (`--copy-storage-all`): every file-backed, writable disk of the
 * domain. The Destination creates each empty, of the same virtual size, before Prepare: libvirt's
 * NBD mirror writes into it.
 */
import { execFile } from 'node:child_process'
import { open } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { HypervisorError } from '../errors'
import { attribute } from './lifecycle-xml'

export interface LiveDisk {
  /** The file name (the Destination puts it in its own VM folder). */
  name: string
  /** The Source's path; never sent to another site. */
  path: string
  target: string
  format: 'raw' | 'qcow2'
  /** Virtual size in bytes (filled in by the Source from libvirt's block info). */
  bytes: number
}

/** The copied disks of a domain XML (without sizes). */
export function liveDisks (xml: string): Array<Omit<LiveDisk, 'bytes'>> {
  const disks: Array<Omit<LiveDisk, 'bytes'>> = []
  for (const disk of xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? []) {
    const open = /<disk\b[^>]*>/.exec(disk)?.[0]
    if (attribute(open, 'device') !== 'disk' || /<(readonly|shareable)\s*\/>/.test(disk)) continue
    const path = attribute(/<source\b[^>]*>/.exec(disk)?.[0], 'file')
    if (attribute(open, 'type') !== 'file' || path === undefined) throw new HypervisorError('UNSUPPORTED_VM', `a disk of type ${String(attribute(open, 'type'))} cannot be migrated live`)
    const target = attribute(/<target\b[^>]*>/.exec(disk)?.[0], 'dev') ?? ''
    const format = attribute(/<driver\b[^>]*>/.exec(disk)?.[0], 'type') ?? 'raw'
    if (format !== 'raw' && format !== 'qcow2') throw new HypervisorError('UNSUPPORTED_VM', `disk ${target} has format ${format}; live migration creates raw and qcow2 disks`)
    disks.push({ name: basename(path), path, target, format })
  }
  return disks
}

/** Creates each disk, empty and sparse, in `dir` (an existing file is left as it is: a retry). */
export async function createDisks (disks: ReadonlyArray<Pick<LiveDisk, 'name' | 'format' | 'bytes'>>, dir: string): Promise<void> {
  for (const disk of disks) {
    const path = join(dir, disk.name)
    if (disk.format === 'qcow2') {
      await promisify(execFile)('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(disk.bytes)]).catch((err: Error & { stderr?: string }) => {
        throw new HypervisorError('UNSUPPORTED_VM', `creating ${disk.name}: ${err.stderr ?? err.message}`, { cause: err })
      })
      continue
    }
    const fd = await open(path, 'a')
    try {
      if ((await fd.stat()).size === 0) await fd.truncate(disk.bytes)
    } finally {
      await fd.close()
    }
  }
}
