import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { copyFile, lstat, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../support/dist-paths'
import { debianRootFor, ensureDeb } from './support/artifacts'
import { scratchRoot } from './support/debian-root'

// packaging/deb/build makes a .deb that installs with plain `dpkg -i` into a fresh Debian bookworm
// (debootstrap minbase, no Node.js), runs there on its own runtime (fedvm --version, guestfs mounted
// on real FUSE, the agent as its dedicated user), and that `dpkg -r` then `dpkg -P` remove without
// leaving a file behind. The package is built by packaging/deb/build (cached by a hash of its
// sources, see support/artifacts.ts); FEDVM_TEST_DEB=FILE tests a given package instead.

const run = promisify(execFile)
// The first run on a machine debootstraps (3-6 min) before anything else; later runs take 1-2 min.
t.setTimeout(15 * 60_000)
const log = (line: string): void => { t.comment(line) }

/** Paths the comparison after purge ignores, with the reason each may change. */
const CHANGED_BY_DESIGN: Array<[RegExp, string]> = [
  [/^var\/lib\/dpkg\//, 'dpkg\'s own database (status, its backups, the package\'s removed .list)'],
  [/^var\/log\//, 'dpkg.log and alternatives.log'],
  [/^var\/cache\/debconf\//, 'debconf\'s database backups (adduser asks debconf)'],
  [/^etc\/(passwd|group|shadow|gshadow)-$/, 'backups the shadow tools write when adduser adds the system users'],
  [/^run\//, 'run-time files (adduser\'s lock, systemd-analyze\'s marker) in /run, a tmpfs emptied at boot on a real system'],
  [/^etc\/mtab\.fuselock$/, 'the lock file libfuse makes at the first FUSE mount of the system (the guestfs check above mounted one)'],
]

const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', NO_COLOR: '1' }

/**
 * `chroot ROOT ...` as argv for /usr/bin/env: tap's process tracking puts its own --import into
 * NODE_OPTIONS of every child, naming a file that does not exist inside the root.
 */
function inRoot (root: string, args: string[], user?: string): string[] {
  return ['-u', 'NODE_OPTIONS', 'chroot', ...(user ? [`--userspec=${user}:${user}`] : []), root, ...args]
}

async function chroot (root: string, args: string[]): Promise<{ stdout: string, stderr: string }> {
  return run('/usr/bin/env', inRoot(root, args), { env: ENV, maxBuffer: 1 << 24 })
}

/** Every path in the root (this file system only: /proc and the FUSE mount are not walked). */
async function fileList (root: string): Promise<string[]> {
  const { stdout } = await run('find', [root, '-xdev', '-mindepth', '1', '-printf', '%y %P\\n'], { maxBuffer: 1 << 26 })
  return stdout.split('\n').filter(Boolean).sort()
}

/** Waits until `text()` matches or `child` exits; the child's stderr is in the error. */
async function waitFor (what: string, text: () => string, pattern: RegExp, child: ReturnType<typeof spawn>, timeoutMs: number): Promise<RegExpExecArray> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const match = pattern.exec(text())
    if (match) return match
    if (child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}: ${text()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what}: no ${pattern} within ${timeoutMs} ms: ${text()}`)
}

async function stop (child: ReturnType<typeof spawn>, timeoutMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await exited
  clearTimeout(timer)
  return code
}

t.test('the .deb installs into a fresh Debian root, runs there, and is removed and purged cleanly', async (t) => {
  const started = Date.now()
  const deb = await ensureDeb(log)
  const { stdout: depends } = await run('dpkg-deb', ['-f', deb, 'Depends'])
  const { stdout: version } = await run('dpkg-deb', ['-f', deb, 'Version'])
  t.equal(version.trim(), JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')).version, 'the package version is package.json\'s')
  t.notMatch(depends, /nodejs/, 'no nodejs dependency: the runtime is bundled')

  const pristine = await debianRootFor(deb, log)
  const scratch = await scratchRoot(pristine)
  t.teardown(() => scratch.destroy())
  if (scratch.fallbackReason) log(`overlayfs refused (${scratch.fallbackReason}): using a copy`)
  const root = scratch.dir
  t.notOk(await stat(join(root, 'usr/bin/node')).then(() => true, () => false), 'the fresh root has no node of its own')

  await run('mount', ['-t', 'proc', 'proc', join(root, 'proc')])
  t.teardown(() => run('umount', ['-l', join(root, 'proc')]).catch(() => undefined))
  // debootstrap makes the usual /dev nodes, not /dev/fuse (same numbers as the host's).
  await run('mknod', ['-m', '0666', join(root, 'dev/fuse'), 'c', '10', '229'])
  const before = await fileList(root)

  await copyFile(deb, join(root, 'tmp/fedvm.deb'))
  const install = await chroot(root, ['dpkg', '-i', '/tmp/fedvm.deb'])
  t.match(install.stdout, /Setting up fedvm/, 'dpkg -i fedvm.deb')
  await rm(join(root, 'tmp/fedvm.deb'))
  t.match((await chroot(root, ['dpkg-query', '-W', '-f=${Status}', 'fedvm'])).stdout, /install ok installed/, 'installed')

  t.test('fedvm is on the PATH and runs on its bundled Node.js', async (t) => {
    t.equal((await chroot(root, ['fedvm', '--version'])).stdout, `fedvm ${version.trim()}\n`, 'fedvm --version')
    t.equal((await chroot(root, ['sh', '-c', 'command -v fedvm'])).stdout.trim(), '/usr/bin/fedvm', '/usr/bin/fedvm')
    t.match((await chroot(root, ['/usr/lib/fedvm/node', '--version'])).stdout, /^v(2[0-9]|[3-9][0-9])\./, 'the bundled runtime is Node.js ≥ 20')
  })

  t.test('users, state folders, conffiles, units and udev rule are in place', async (t) => {
    for (const user of ['fedvm-agent', 'fedvm-site']) {
      const { stdout } = await chroot(root, ['getent', 'passwd', user])
      t.match(stdout, new RegExp(`^${user}:x:\\d+:\\d+:[^:]*:/var/lib/fedvm/${user.slice(6)}:/usr/sbin/nologin$`, 'm'), `system user ${user}`)
    }
    const owners = (await chroot(root, ['stat', '-c', '%n %U:%G %a', '/var/lib/fedvm/agent', '/var/lib/fedvm/site', '/var/lib/fedvm/guestfs'])).stdout
    t.equal(owners, '/var/lib/fedvm/agent fedvm-agent:fedvm-agent 750\n/var/lib/fedvm/site fedvm-site:fedvm-site 750\n/var/lib/fedvm/guestfs root:root 700\n', 'state folders owned by their service')
    const conffiles = (await chroot(root, ['dpkg-query', '-W', '-f=${Conffiles}', 'fedvm'])).stdout
    for (const file of ['/etc/fedvm/agent.json', '/etc/fedvm/site.example.json', '/etc/default/fedvm-agent', '/etc/default/fedvm-site', '/etc/default/fedvm-guestfs']) {
      t.match(conffiles, new RegExp(`^ ${file} [0-9a-f]{32}$`, 'm'), `conffile ${file}`)
    }
    for (const file of ['lib/systemd/system/fedvm-agent.service', 'lib/systemd/system/fedvm-site.service', 'lib/systemd/system/fedvm-guestfs.service', 'lib/udev/rules.d/60-fedvm-guestfs.rules']) {
      t.ok(await stat(join(root, file)).then((s) => s.isFile(), () => false), `/${file}`)
    }
    // The installed units against the installed system: every command they run is there.
    const verify = await chroot(root, ['systemd-analyze', 'verify', 'fedvm-agent.service', 'fedvm-site.service', 'fedvm-guestfs.service'])
    t.equal(verify.stderr.trim(), '', 'systemd-analyze verify of the installed units: no warning')
    t.ok(await lstat(join(root, 'etc/systemd/system/multi-user.target.wants/fedvm-agent.service')).then((s) => s.isSymbolicLink(), () => false), 'fedvm-agent enabled (deb-systemd-helper, no systemd running)')
  })

  t.test('fedvm guestfs mount serves KPIs on real FUSE inside the root', async (t) => {
    const child = spawn('/usr/bin/env', inRoot(root, ['/usr/bin/fedvm', 'guestfs', 'mount', '/kpi', '--db', '/var/lib/fedvm/guestfs/kpi.db']), { stdio: ['ignore', 'pipe', 'pipe'], env: ENV })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    t.teardown(async () => {
      await stop(child)
      await run('fusermount', ['-uz', join(root, 'kpi')]).catch(() => undefined)
    })
    await waitFor('fedvm guestfs mount', () => stderr, /guestfs: mounted \/kpi/, child, 30_000)
    const mounts = await readFile('/proc/mounts', 'utf8')
    t.ok(mounts.split('\n').some((line) => line.split(' ')[1] === join(root, 'kpi') && line.split(' ')[2] === 'fuse.fedvm'), 'a fuse.fedvm mount on /kpi')
    await writeFile(join(root, 'kpi/unencrypted/users'), 'current_users,load\n17,0.5\n')
    t.equal(await readFile(join(root, 'kpi/unencrypted/users'), 'utf8'), 'current_users,load\n17,0.5\n', 'a written KPI reads back')
    const refused = await writeFile(join(root, 'kpi/unencrypted/broken'), 'a\nb\nc\n').then(() => 'stored', (err: NodeJS.ErrnoException) => err.code)
    t.equal(refused, 'EINVAL', 'a three-line KPI is refused at close')
    t.equal(await stop(child), 0, 'SIGTERM: exits 0')
    t.match(stderr, /guestfs: unmounted \/kpi/, 'unmounted cleanly')
    t.notOk((await readFile('/proc/mounts', 'utf8')).includes(join(root, 'kpi')), 'no mount left')
  })

  t.test('the agent runs as fedvm-agent with the packaged state folder and serves /metrics', async (t) => {
    // Port 0: the host's network is shared with the chroot, and other tests may hold 9464.
    await writeFile(join(root, 'tmp/agent.json'), JSON.stringify({ listen: '127.0.0.1:0', stateDir: '/var/lib/fedvm/agent', vms: [], consumers: [] }))
    t.teardown(() => rm(join(root, 'tmp/agent.json'), { force: true }))
    const child = spawn('/usr/bin/env', inRoot(root, ['/usr/bin/fedvm', 'agent', 'run', '--config', '/tmp/agent.json'], 'fedvm-agent'), { stdio: ['ignore', 'pipe', 'pipe'], env: ENV })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    t.teardown(() => stop(child))
    const [, url] = await waitFor('fedvm agent run', () => stderr, /serving \/metrics on (http:\/\/[^\s,]+)/, child, 30_000)
    const metrics = await (await fetch(url)).text()
    t.match(metrics, new RegExp(`fedvm_build_info\\{version="${version.trim().replace(/\./g, '\\.')}"\\} 1`), '/metrics has fedvm_build_info')
    t.equal(await stop(child), 0, 'SIGTERM: exits 0')
    const owners = (await chroot(root, ['find', '/var/lib/fedvm/agent', '-mindepth', '1', '!', '-user', 'fedvm-agent'])).stdout
    t.equal(owners, '', 'everything the agent wrote is fedvm-agent\'s')
  })

  t.test('installing again (the upgrade path) keeps a local config edit and the users', async (t) => {
    const edited = (await readFile(join(root, 'etc/fedvm/agent.json'), 'utf8')).replace('127.0.0.1:9464', '0.0.0.0:9464')
    await writeFile(join(root, 'etc/fedvm/agent.json'), edited)
    const uid = (await chroot(root, ['id', '-u', 'fedvm-agent'])).stdout
    await copyFile(deb, join(root, 'tmp/fedvm.deb'))
    t.teardown(() => rm(join(root, 'tmp/fedvm.deb'), { force: true }))
    const again = await chroot(root, ['dpkg', '-i', '/tmp/fedvm.deb'])
    t.match(again.stdout, /Setting up fedvm/, 'dpkg -i over the installed package')
    t.equal(await readFile(join(root, 'etc/fedvm/agent.json'), 'utf8'), edited, 'the edited /etc/fedvm/agent.json is kept (a conffile)')
    t.equal((await chroot(root, ['id', '-u', 'fedvm-agent'])).stdout, uid, 'fedvm-agent keeps its uid')
  })

  t.test('dpkg -r keeps the conffiles, dpkg -P leaves nothing behind', async (t) => {
    await chroot(root, ['dpkg', '-r', 'fedvm'])
    t.match((await chroot(root, ['dpkg-query', '-W', '-f=${Status}', 'fedvm'])).stdout, /deinstall ok config-files/, 'removed, config files kept')
    t.notOk(await stat(join(root, 'usr/bin/fedvm')).then(() => true, () => false), '/usr/bin/fedvm is gone')
    t.ok(await stat(join(root, 'etc/fedvm/agent.json')).then(() => true, () => false), '/etc/fedvm/agent.json stays until purge')

    await chroot(root, ['dpkg', '-P', 'fedvm'])
    const status = await chroot(root, ['dpkg-query', '-W', '-f=${Status}', 'fedvm']).then((r) => r.stdout, (err: { stderr: string }) => err.stderr)
    t.match(status, /no packages found matching fedvm|not-installed/, 'purged')
    const after = await fileList(root)
    const ignored = (entry: string): boolean => CHANGED_BY_DESIGN.some(([pattern]) => pattern.test(entry.slice(2)))
    const added = after.filter((entry) => !before.includes(entry) && !ignored(entry))
    const removed = before.filter((entry) => !after.includes(entry) && !ignored(entry))
    t.same(added, [], 'no file or folder left behind')
    t.same(removed, [], 'nothing of the system removed')
    t.match((await chroot(root, ['getent', 'passwd', 'fedvm-agent'])).stdout, /^fedvm-agent:/, 'the system users stay (Debian practice)')
  })

  t.teardown(() => { log(`deb install test: ${Math.round((Date.now() - started) / 1000)} s`) })
})
