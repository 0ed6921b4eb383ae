import { execFile } from 'node:child_process'
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { mkdtemp, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Teardownable } from '../../support/teardownable'

const run = promisify(execFile)

/** Why a tiny filesystem cannot be mounted here (mounting needs root), or undefined when it can. */
export function tinyFsUnavailable (): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'mounting a tmpfs needs root'
}

/**
 * A real, small filesystem (a tmpfs of `sizeKiB`) on a temp dir, so a daemon's state dir can run
 * out of space for real: `fill()` takes every free byte with a filler file, `free()` removes it.
 * Unmounted (lazily, so a daemon still holding files cannot block it) and removed at teardown.
 */
export class TinyFs {
  private filler?: string

  private constructor (readonly path: string) {}

  static async mount (t: Teardownable, sizeKiB: number): Promise<TinyFs> {
    const path = await mkdtemp(join(tmpdir(), 'fedvm-tiny-fs-'))
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'fedvm-tiny-fs', path])
    t.teardown(async () => {
      await run('umount', ['-l', path])
      await rmdir(path)
    })
    return new TinyFs(path)
  }

  /** Writes a filler file until the filesystem answers ENOSPC; returns the bytes it took. */
  fill (): number {
    this.filler = join(this.path, 'filler')
    const fd = openSync(this.filler, 'w')
    const chunk = Buffer.alloc(4096, 0x66)
    let written = 0
    try {
      for (;;) written += writeSync(fd, chunk)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
    } finally {
      closeSync(fd)
    }
    return written
  }

  /** Gives the filler's space back. */
  free (): void {
    if (this.filler !== undefined) unlinkSync(this.filler)
    this.filler = undefined
  }
}
