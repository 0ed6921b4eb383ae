/**
 * The .deb and the VM image the packaging tests use, built by the real build scripts and cached
 * under FEDVM_VM_CACHE (default /var/cache/fedvm-test) by a hash of everything that goes into them
 * (the program's sources, lockfile, packaging/ and the Node.js version), so the tests rebuild only
 * after a change. A lock folder keeps two test processes from building the same thing at once.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../../support/dist-paths'
import { cacheRoot } from '../../support/vm/guest-image'
import { ensureDebianRoot } from './debian-root'

const run = promisify(execFile)

/** What the package is made from (the tests are not in it). */
const PACKAGED = ['agent', 'guestfs', 'host', 'protocol', 'packaging', 'package.json', 'package-lock.json', 'tsconfig.json']

async function hashFiles (paths: string[], extra: string): Promise<string> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...paths], { cwd: REPO_ROOT, maxBuffer: 1 << 24 })
  const hash = createHash('sha256').update(extra)
  for (const file of stdout.split('\0').filter(Boolean).sort()) {
    const content = await readFile(join(REPO_ROOT, file)).catch(() => Buffer.from('(deleted)'))
    hash.update(`${file}\0${content.length}\0`).update(content)
  }
  return hash.digest('hex').slice(0, 12)
}

/** Runs `build(tmpDir)` once for `name` (a folder in the cache); others wait for its result. */
async function cached (name: string, build: (dir: string) => Promise<void>, log: (line: string) => void, timeoutMs: number): Promise<string> {
  const dir = join(cacheRoot(), name)
  const lock = `${dir}.lock`
  await mkdir(cacheRoot(), { recursive: true })
  const until = Date.now() + timeoutMs
  for (;;) {
    if (await stat(dir).then(() => true, () => false)) return dir
    try {
      await mkdir(lock)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      // A lock left by a killed test run is older than any build takes.
      const age = Date.now() - (await stat(lock).then((s) => s.mtimeMs, () => Date.now()))
      if (age > timeoutMs) await rm(lock, { recursive: true, force: true })
      if (Date.now() > until) throw new Error(`${lock} is held by another build for too long`, { cause: err })
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
  }
  const tmp = await mkdtemp(join(cacheRoot(), `${name}.building-`))
  try {
    const started = Date.now()
    await build(tmp)
    await rename(tmp, dir)
    log(`${name}: built in ${Math.round((Date.now() - started) / 1000)} s`)
    await pruneOlder(name)
    return dir
  } finally {
    await rm(tmp, { recursive: true, force: true })
    await rm(lock, { recursive: true, force: true })
  }
}

/**
 * Drops earlier builds of the same kind (`deb-*` for `deb-KEY`): each is 100-200 MB. One touched in
 * the last 10 minutes may still be in use by a test of another checkout, and stays.
 */
async function pruneOlder (name: string): Promise<void> {
  const prefix = name.replace(/-[0-9a-f]{12}$/, '-')
  for (const entry of await readdir(cacheRoot())) {
    if (entry === name || !/^[a-z-]+-[0-9a-f]{12}$/.test(entry) || !entry.startsWith(prefix) || entry.slice(prefix.length).includes('-')) continue
    const mtime = await stat(join(cacheRoot(), entry)).then((s) => s.mtimeMs, () => Date.now())
    if (Date.now() - mtime > 10 * 60_000) await rm(join(cacheRoot(), entry), { recursive: true, force: true })
  }
}

/** The .deb of this checkout (packaging/deb/build --compress none), or FEDVM_TEST_DEB. */
export async function ensureDeb (log: (line: string) => void): Promise<string> {
  if (process.env.FEDVM_TEST_DEB) return process.env.FEDVM_TEST_DEB
  const key = await hashFiles(PACKAGED, `node ${process.version}`)
  const dir = await cached(`deb-${key}`, async (out) => {
    // No compression: xz costs a minute of CPU and changes nothing that is installed.
    await run(join(REPO_ROOT, 'packaging', 'deb', 'build'), ['--compress', 'none', '--out', out], { maxBuffer: 1 << 24 })
  }, log, 10 * 60_000)
  const deb = (await readdir(dir)).find((f) => f.endsWith('.deb'))
  if (deb === undefined) throw new Error(`${dir} holds no .deb`)
  return join(dir, deb)
}

export interface VmImage { dir: string, qcow2: string, kernel: string, initramfs: string, domainTemplate: string }

/** The package names of a Depends: field (the first of each alternative). */
export function dependencyNames (depends: string): string[] {
  return depends.split(',').map((entry) => entry.split('|')[0].trim().split(/[\s(]/)[0]).filter(Boolean)
}

/** The fresh Debian root for `deb`: its dependencies, systemd and udev (see debian-root.ts). */
export async function debianRootFor (deb: string, log: (line: string) => void): Promise<string> {
  const { stdout: depends } = await run('dpkg-deb', ['-f', deb, 'Depends'])
  return ensureDebianRoot(dependencyNames(depends), log)
}

/** The test VM image with `deb` inside (packaging/vm-image/build from the same fresh root). */
export async function ensureVmImage (deb: string, log: (line: string) => void): Promise<VmImage> {
  const base = await debianRootFor(deb, log)
  const { stdout: md5sums } = await run('dpkg-deb', ['-I', deb, 'md5sums'], { maxBuffer: 1 << 24 })
  const key = await hashFiles(['packaging/vm-image'], `${base}\n${md5sums}`)
  const dir = await cached(`vm-image-${key}`, async (out) => {
    await run(join(REPO_ROOT, 'packaging', 'vm-image', 'build'), ['--deb', deb, '--out', out, '--cache', cacheRoot(), '--base', base], { maxBuffer: 1 << 24 })
  }, log, 30 * 60_000)
  return { dir, qcow2: join(dir, 'fedvm-vm.qcow2'), kernel: join(dir, 'vmlinux'), initramfs: join(dir, 'initramfs.cpio'), domainTemplate: join(dir, 'domain.xml.in') }
}
