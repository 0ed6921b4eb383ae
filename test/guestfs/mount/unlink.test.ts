import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'

// Contract 1: "`unlink` hides the file; the table and its history stay. Writing the name again
// continues the table."

t.test('unlink hides the file but keeps the table and its rows; writing again continues the table', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  const file = mount.path('unencrypted', 'users')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'n,load\n1,0.5\n' }), 'ok')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'n\n2\n' }), 'ok')
  t.equal(await app.outcome({ op: 'unlink', path: file }), 'ok', 'unlink')

  t.equal(await app.outcome({ op: 'stat', path: file }), 'stat ENOENT', 'the file is gone')
  t.equal(await app.outcome({ op: 'read', path: file }), 'open ENOENT', 'it cannot be read')
  t.same(await app.value({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` }), [], 'nor listed')
  t.equal(await app.outcome({ op: 'unlink', path: file }), 'unlink ENOENT', 'a second unlink finds nothing')
  t.same(mount.query('SELECT n, load FROM users ORDER BY rowid'), [{ n: 1, load: 0.5 }, { n: 2, load: null }], 'the history stays')

  t.equal(await app.outcome({ op: 'write', path: file, data: 'n\n3\n' }), 'ok', 'writing the name again')
  t.same(mount.kpiTables(), ['users'], 'the same table')
  t.same(mount.query('SELECT n, load FROM users ORDER BY rowid'), [{ n: 1, load: 0.5 }, { n: 2, load: null }, { n: 3, load: null }], 'continues it')
  t.same(mount.columns('users').map((c) => c.name), ['ts', 'n', 'load'], 'with its columns')
  t.equal((await app.read(file)).toString(), 'n\n3\n', 'and the file is back with the new content')
  t.same(await app.value({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` }), ['users'])

  const shell = await mount.sh('rm unencrypted/users && ls unencrypted | wc -l')
  t.equal(shell.stdout.trim(), '0', 'rm from a shell hides it too')
  t.equal(mount.rowCount('users'), 3)
})

t.test('an unlinked KPI still owns its name: a case variant or the other directory is still EEXIST', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'load'), data: '1\n' }), 'ok')
  t.equal(await app.outcome({ op: 'unlink', path: mount.path('unencrypted', 'load') }), 'ok')
  t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'LOAD'), data: '2\n' }), 'open EEXIST', 'case variant')
  t.equal(await app.outcome({ op: 'write', path: mount.path('encrypted', 'load'), data: { base64: Buffer.alloc(64).toString('base64') } }), 'open EEXIST', 'other directory')
  t.same(mount.kpiTables(), ['load'])
  t.equal(mount.rowCount('load'), 1)
})

t.test('unlink survives a remount: still hidden, history kept', async (t) => {
  const mount = await TestMount.create(t)
  const file = mount.path('unencrypted', 'gone')
  t.equal(await mount.app.outcome({ op: 'write', path: file, data: 'v\n1\n' }), 'ok')
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('unencrypted', 'kept'), data: 'v\n1\n' }), 'ok')
  t.equal(await mount.app.outcome({ op: 'unlink', path: file }), 'ok')
  t.same(await mount.signal('SIGTERM'), { code: 0, signal: null }, 'unmounted')
  await mount.start()
  const app = mount.worker()
  t.same(await app.value({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` }), ['kept'], 'only the visible KPI is listed after remount')
  t.equal(await app.outcome({ op: 'stat', path: file }), 'stat ENOENT')
  t.equal(mount.rowCount('gone'), 1, 'its history is kept')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'v\n2\n' }), 'ok')
  t.same(mount.query('SELECT v FROM gone ORDER BY rowid'), [{ v: 1 }, { v: 2 }], 'writing again continues the table')
})
