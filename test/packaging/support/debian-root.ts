/**
 * A fresh Debian root to install the fedvm package into: `debootstrap --variant=minbase bookworm`
 * with the package's dependencies included (dpkg -i does not fetch them), made once per machine and
 * cached under FEDVM_VM_CACHE (default /var/cache/fedvm-test), keyed by that package list. The
 * cached root stays pristine: each test gets an overlay on top of it (or a copy where overlayfs
 * is not available) and throws it away.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cacheRoot } from '../../support/vm/guest-image'

const run = promisify(execFile)

export const SUITE = 'bookworm'
const MIRROR = process.env.FEDVM_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian'

/** The cached pristine root with `include` installed; built on first use (~1-4 min, network). */
export async function ensureDebianRoot (include: readonly string[], log: (line: string) => void): Promise<string> {
  const packages = [...new Set(include)].sort()
  const key = createHash('sha256').update(`${SUITE} minbase ${packages.join(',')}`).digest('hex').slice(0, 12)
  const root = join(cacheRoot(), `debian-${SUITE}-minbase-${key}`)
  if (await access(join(root, '.fedvm-complete')).then(() => true, () => false)) return root
  await mkdir(cacheRoot(), { recursive: true })
  const work = await mkdtemp(join(cacheRoot(), 'debootstrap-'))
  const started = Date.now()
  log(`debootstrap --variant=minbase --include=${packages.join(',')} ${SUITE} (cached in ${root})`)
  try {
    await run('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, SUITE, join(work, 'root'), MIRROR], { maxBuffer: 1 << 26 })
    await run('sh', ['-c', 'chroot "$1" apt-get clean && rm -rf "$1"/var/lib/apt/lists/*', 'sh', join(work, 'root')])
    await run('touch', [join(work, 'root', '.fedvm-complete')])
    await rename(join(work, 'root'), root).catch((err: NodeJS.ErrnoException) => {
      // Another test process finished the same root first: use theirs.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
    })
    log(`debootstrap took ${Math.round((Date.now() - started) / 1000)} s`)
    return root
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

export interface ScratchRoot {
  /** The root to chroot into; changes land in a temp folder, never in the cached root. */
  dir: string
  how: 'overlay' | 'copy'
  /** Why overlayfs was not used, when it was not. */
  fallbackReason?: string
  destroy: () => Promise<void>
}

/** A throw-away root over the pristine one: overlayfs, or a full copy if overlayfs refuses. */
export async function scratchRoot (pristine: string): Promise<ScratchRoot> {
  const tmp = await mkdtemp(join(cacheRoot(), 'scratch-'))
  const dir = join(tmp, 'merged')
  await Promise.all(['merged', 'upper', 'work'].map((d) => mkdir(join(tmp, d))))
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${pristine},upperdir=${join(tmp, 'upper')},workdir=${join(tmp, 'work')}`, dir])
    return {
      dir,
      how: 'overlay',
      destroy: async () => {
        await run('umount', [dir]).catch(() => run('umount', ['-l', dir]))
        await rm(tmp, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await run('cp', ['-a', `${pristine}/.`, dir])
    return { dir, how: 'copy', fallbackReason: (err as Error).message, destroy: () => rm(tmp, { recursive: true, force: true }) }
  }
}
