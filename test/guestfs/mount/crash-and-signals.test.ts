import t from 'tap'
import { execFile } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { promisify } from 'node:util'
import { TestMount, isMounted, runFedvm, watchExit } from '../../support/guestfs-mount'

// Contract 1: "`fedvm guestfs mount` ... runs in the foreground, unmounts cleanly on SIGINT/SIGTERM,
// and recovers a stale mount point left by a crash." "By default a committed row survives the
// guestfs process being killed (SIGKILL) right after (WAL, synchronous=NORMAL)."

const execFileAsync = promisify(execFile)

/** Polls (async, from this process) until the mount point lists the two directories. */
async function waitUntilServed (mountpoint: string): Promise<void> {
  const deadline = Date.now() + 10000
  while (Date.now() < deadline) {
    const entries = await readdir(mountpoint).catch(() => [])
    if (entries.length === 2) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`${mountpoint} is not served after 10 s`)
}

t.test('SIGKILL right after close() returned: the row is there after a remount, and the stale mount is recovered', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'users'), data: 'n\n1\n' }), 'ok')
  const victim = mount.guestfs.child
  // The writer itself kills the server the instant its close() returns: nothing else can run in between.
  t.equal(await app.outcome({ op: 'writeThenKill', path: mount.path('unencrypted', 'users'), data: 'n,last\n2,yes\n', pid: victim.pid! }), 'ok')
  t.same(await watchExit(victim), { code: null, signal: 'SIGKILL' }, 'the server was killed')

  t.ok(await isMounted(mount.mountpoint), 'the dead mount is still in /proc/mounts')
  await t.rejects(stat(mount.mountpoint), { code: 'ENOTCONN' }, 'and it is stale (ENOTCONN)')

  await mount.start()
  // startGuestfsProcess promises a usable mount when it resolves, here too.
  const entries = await readdir(mount.mountpoint).catch((err: NodeJS.ErrnoException) => err.code)
  t.same(entries, ['encrypted', 'unencrypted'], 'the new mount serves as soon as start resolved')
  await waitUntilServed(mount.mountpoint)
  t.match(await mount.logLines(/stale/, 1), [/stale/], 'the next mount says it recovered the stale mount')
  t.ok(await isMounted(mount.mountpoint), 'mounted again on the same mount point')
  t.same(mount.query('SELECT n, last FROM users ORDER BY rowid'), [{ n: 1, last: null }, { n: 2, last: 'yes' }], 'both committed rows survived')
  const reader = mount.worker()
  t.equal((await reader.read(mount.path('unencrypted', 'users'))).toString(), 'n,last\n2,yes\n', 'and the file reads as the last commit')
  t.equal(await reader.outcome({ op: 'write', path: mount.path('unencrypted', 'users'), data: 'n\n3\n' }), 'ok', 'writing goes on')
  t.equal(mount.rowCount('users'), 3)
})

t.test('a second guestfs refuses a mount point that a live guestfs serves (exit 1, message), and the first keeps serving', async (t) => {
  const mount = await TestMount.create(t)
  const second = await runFedvm(['guestfs', 'mount', mount.mountpoint, '--db', `${mount.dir}/other.db`])
  t.equal(second.code, 1, 'exit 1')
  t.match(second.stderr, /already mounted/, second.stderr)
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('unencrypted', 'x'), data: '1\n' }), 'ok', 'the first still serves')
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal} unmounts cleanly: exit 0, gone from /proc/mounts, rows kept`, async (t) => {
    const mount = await TestMount.create(t, { mountName: 'kpi with space' })
    t.equal(await mount.app.outcome({ op: 'write', path: mount.path('unencrypted', 'x'), data: 'v\n1\n' }), 'ok')
    await mount.app.stop()
    t.ok(await isMounted(mount.mountpoint), 'mounted (a mount point with a space in its path)')
    t.same(await mount.signal(signal), { code: 0, signal: null }, 'exit code 0')
    t.notOk(await isMounted(mount.mountpoint), 'not in /proc/mounts')
    t.match(await mount.logLines(/unmounted/, 1), [/unmounted/], 'it finished its shutdown and says so')
    const { stdout } = await execFileAsync('ls', ['-A', mount.mountpoint])
    t.equal(stdout, '', 'the mount point is an empty directory again')
    t.same(mount.query('SELECT v FROM x'), [{ v: 1 }], 'the row is in the database')
  })
}

t.test('--sync full mounts and commits the same way (it adds an fsync per commit for power loss)', async (t) => {
  const mount = await TestMount.create(t, { extraArgs: ['--sync', 'full'] })
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('unencrypted', 'x'), data: 'v\n1\n' }), 'ok')
  t.same(mount.query('SELECT v FROM x'), [{ v: 1 }])
  t.same(await mount.signal('SIGTERM'), { code: 0, signal: null })
})
