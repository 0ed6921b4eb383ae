/**
 * A fresh Debian root to install the fedvm package into: `debootstrap --variant=minbase bookworm`
 * with the package's dependencies (dpkg -i does not fetch them) and systemd + udev (as on a host,
 * though not running; the VM image is built from the same root), made once per machine and cached
 * under FEDVM_VM_CACHE (default /var/cache/fedvm-test), keyed by that package list. The cached root
 * stays pristine: each test gets an overlay on top of it (or a copy where overlayfs is not
 * available) and throws it away.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cacheRoot } from '../../support/vm/guest-image'

const run = promisify(execFile)

export const SUITE = 'bookworm'
/** The same list as SYSTEM_PACKAGES in packaging/vm-image/build. */
export const SYSTEM_PACKAGES = ['systemd', 'systemd-sysv', 'udev', 'init-system-helpers', 'qemu-guest-agent']
const MIRROR = process.env.FEDVM_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian'

/** The cached pristine root with SYSTEM_PACKAGES and `include` installed; built on first use (~3-6 min, network). */
export async function ensureDebianRoot (include: readonly string[], log: (line: string) => void): Promise<string> {
  const packages = [...new Set([...SYSTEM_PACKAGES, ...include])].sort()
  const key = createHash('sha256').update(`${SUITE} minbase ${packages.join(',')}`).digest('hex').slice(0, 12)
  // The folder appears (renamed into place) only once complete; the root is its root/.
  const dir = join(cacheRoot(), `debian-${SUITE}-minbase-${key}`)
  const root = join(dir, 'root')
  if (await access(root).then(() => true, () => false)) return root
  await mkdir(cacheRoot(), { recursive: true })
  const work = await mkdtemp(join(cacheRoot(), 'debootstrap-'))
  const started = Date.now()
  log(`debootstrap --variant=minbase --include=${packages.join(',')} ${SUITE} (cached in ${root})`)
  try {
    await run('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, SUITE, join(work, 'root'), MIRROR], { maxBuffer: 1 << 26 })
    await run('sh', ['-c', 'chroot "$1" apt-get clean && rm -rf "$1"/var/lib/apt/lists/*', 'sh', join(work, 'root')])
    await mkdir(join(work, 'done'))
    await rename(join(work, 'root'), join(work, 'done', 'root'))
    await rename(join(work, 'done'), dir).catch((err: NodeJS.ErrnoException) => {
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
        // Whatever a test mounted inside (proc, a FUSE mount) first, so the overlay itself is not busy.
        await run('umount', ['-R', dir]).catch(() => run('umount', ['-R', '-l', dir]))
        await rm(tmp, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await run('cp', ['-a', `${pristine}/.`, dir])
    return { dir, how: 'copy', fallbackReason: (err as Error).message, destroy: () => rm(tmp, { recursive: true, force: true }) }
  }
}
