import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'

// Contract 1: "a staging file (name starting with `.`, or ending in `.tmp` or `~`) is held, not
// stored; renaming it onto a KPI name commits its content as one row of that KPI's table, also
// while a reader holds the target open."

const STAGING_NAMES = ['.users.swp', '.hidden', 'users.tmp', 'users~', '.x.tmp~']

t.test('staging files are held, not stored: readable and listed, but no table and no row', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  for (const name of STAGING_NAMES) {
    // Not parsed either: a staging file may hold anything until it is renamed.
    const content = `a\nb\nc\n${name}\n`
    t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', name), data: content }), 'ok', name)
    t.equal((await app.read(mount.path('unencrypted', name))).toString(), content, `${name} reads back`)
  }
  const listed = await app.value<string[]>({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` })
  t.same(listed.sort(), [...STAGING_NAMES].sort())
  t.same(mount.kpiTables(), [], 'no table')
  t.equal(mount.totalRows(), 0, 'no row')
  t.equal(await app.outcome({ op: 'unlink', path: mount.path('unencrypted', 'users~') }), 'ok', 'a staging file can be removed')
  t.equal(await app.outcome({ op: 'stat', path: mount.path('unencrypted', 'users~') }), 'stat ENOENT')
})

t.test('renaming a staging file onto a KPI name commits its content as exactly one row', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'latency'), data: 'p99_ms\n10\n' }), 'ok')
  for (const [i, staging] of ['latency.tmp', '.latency.XYZ123', 'latency~'].entries()) {
    const content = `p99_ms\n${20 + i}.5\n`
    t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', staging), data: content }), 'ok')
    t.equal(mount.rowCount('latency'), 1 + i, `writing ${staging} stores nothing`)
    t.equal(await app.outcome({ op: 'rename', from: mount.path('unencrypted', staging), to: mount.path('unencrypted', 'latency') }), 'ok', `rename ${staging}`)
    t.equal(mount.rowCount('latency'), 2 + i, 'one row more, committed when rename() returned')
    t.equal((await app.read(mount.path('unencrypted', 'latency'))).toString(), content, 'the KPI reads the renamed content')
    t.equal(await app.outcome({ op: 'stat', path: mount.path('unencrypted', staging) }), 'stat ENOENT', 'the staging file is gone')
  }
  t.same(mount.query('SELECT typeof(p99_ms) AS t, p99_ms FROM latency ORDER BY rowid'),
    [{ t: 'integer', p99_ms: 10 }, { t: 'real', p99_ms: 20.5 }, { t: 'real', p99_ms: 21.5 }, { t: 'real', p99_ms: 22.5 }])
  const [{ ts }] = mount.query<{ ts: number }>('SELECT ts FROM latency ORDER BY rowid DESC LIMIT 1')
  t.equal((await app.stat(mount.path('unencrypted', 'latency'))).mtimeNs, BigInt(ts) * 1_000_000n, 'mtime is the new row\'s ts')

  // The same pattern from a shell, onto a new name.
  const shell = await mount.sh('printf "p50_ms\\n3\\n" > unencrypted/p50.tmp && mv unencrypted/p50.tmp unencrypted/p50')
  t.equal(shell.code, 0, shell.stderr)
  t.same(mount.query('SELECT p50_ms FROM p50'), [{ p50_ms: 3 }])
  t.same(mount.kpiTables().sort(), ['latency', 'p50'], 'no table for any staging name')
})

t.test('rename onto a KPI commits also while a reader holds the target open', async (t) => {
  const mount = await TestMount.create(t)
  const reader = mount.worker()
  const writer = mount.worker()
  const target = mount.path('unencrypted', 'state')
  t.equal(await writer.outcome({ op: 'write', path: target, data: 'v\n1\n' }), 'ok')
  const held = await reader.value<number>({ op: 'open', path: target, flags: 'r' })
  t.equal(Buffer.from(await reader.value<string>({ op: 'readFd', fd: held }), 'base64').toString(), 'v\n1\n', 'the reader reads the committed content')

  t.equal(await writer.outcome({ op: 'write', path: mount.path('unencrypted', '.state.new'), data: 'v\n2\n' }), 'ok')
  t.equal(await writer.outcome({ op: 'rename', from: mount.path('unencrypted', '.state.new'), to: target }), 'ok', 'rename succeeds')
  t.same(mount.query('SELECT v FROM state ORDER BY rowid'), [{ v: 1 }, { v: 2 }], 'one row committed')
  t.equal((await writer.read(target)).toString(), 'v\n2\n', 'a new open reads the new content')
  t.equal(await reader.outcome({ op: 'readFd', fd: held }), 'ok', 'the held handle still reads')
  t.equal(await reader.outcome({ op: 'close', fd: held }), 'ok', 'and closes without error')
  t.equal(mount.rowCount('state'), 2, 'closing the reader adds no row')
  const listed = await writer.value<string[]>({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` })
  t.same(listed, ['state'], 'no .fuse_hidden file or staging leftover')
})

t.test('a rename whose content or target is refused returns the errno, stores nothing and keeps the staging file', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'kpi'), data: 'a\n1\n' }), 'ok')
  t.equal(await app.outcome({ op: 'write', path: mount.path('encrypted', 'secret'), data: { base64: Buffer.alloc(64, 1).toString('base64') } }), 'ok')
  const cases: Array<[string, string, string, string]> = [
    ['three lines', 'a\n1\n2\n', 'kpi', 'rename EINVAL'],
    ['reserved column ts', 'ts\n1\n', 'fresh', 'rename EINVAL'],
    ['a case variant of a KPI', 'a\n2\n', 'KPI', 'rename EEXIST'],
    ['a name owned by encrypted/', 'a\n2\n', 'secret', 'rename EEXIST'],
    ['a reserved name', 'a\n2\n', 'sqlite_x', 'rename EPERM'],
  ]
  for (const [what, content, target, expected] of cases) {
    const staging = mount.path('unencrypted', `${target}.tmp`)
    t.equal(await app.outcome({ op: 'write', path: staging, data: content }), 'ok', `stage ${what}`)
    t.equal(await app.outcome({ op: 'rename', from: staging, to: mount.path('unencrypted', target) }), expected, what)
    t.equal((await app.read(staging)).toString(), content, 'the staging file is still there')
  }
  t.same(mount.kpiTables().sort(), ['kpi', 'secret'], 'no table created')
  t.same(mount.query('SELECT a FROM kpi'), [{ a: 1 }], 'no row added')
  t.equal((await app.read(mount.path('unencrypted', 'kpi'))).toString(), 'a\n1\n', 'the KPI reads as before')
})
