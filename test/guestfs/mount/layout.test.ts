import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'

// DESIGN.md Contract 1: "The root holds exactly encrypted/ and unencrypted/; creating anything else
// anywhere is EPERM. Files are flat inside those two directories." Each refusal is checked as the
// application sees it and against the database (nothing stored).

t.test('the root holds exactly encrypted/ and unencrypted/, both directories', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  const entries = await worker.value<string[]>({ op: 'readdir', path: mount.mountpoint })
  t.same(entries.sort(), ['encrypted', 'unencrypted'])
  for (const dir of ['encrypted', 'unencrypted']) {
    t.ok((await worker.stat(`${mount.mountpoint}/${dir}`)).isDirectory, `${dir}/ is a directory`)
    t.same(await worker.value({ op: 'readdir', path: `${mount.mountpoint}/${dir}` }), [], `${dir}/ starts empty`)
  }
})

t.test('creating anything else anywhere is EPERM, and nothing is stored', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  const root = mount.mountpoint
  const refusals: Array<[string, Parameters<typeof worker.outcome>[0], string]> = [
    ['mkdir at the root', { op: 'mkdir', path: `${root}/metrics` }, 'mkdir EPERM'],
    ['mkdir inside unencrypted/', { op: 'mkdir', path: `${root}/unencrypted/sub` }, 'mkdir EPERM'],
    ['mkdir inside encrypted/', { op: 'mkdir', path: `${root}/encrypted/sub` }, 'mkdir EPERM'],
    ['a file at the root', { op: 'write', path: `${root}/users`, data: 'a\n1\n' }, 'open EPERM'],
    ['a staging file at the root', { op: 'write', path: `${root}/users.tmp`, data: 'a\n1\n' }, 'open EPERM'],
    ['a symlink in unencrypted/', { op: 'symlink', target: 'users', path: `${root}/unencrypted/link` }, 'symlink EPERM'],
    ['a symlink at the root', { op: 'symlink', target: 'unencrypted', path: `${root}/link` }, 'symlink EPERM'],
    ['removing unencrypted/', { op: 'rmdir', path: `${root}/unencrypted` }, 'rmdir EPERM'],
    ['removing encrypted/', { op: 'rmdir', path: `${root}/encrypted` }, 'rmdir EPERM'],
    ['renaming unencrypted/ to a new name at the root', { op: 'rename', from: `${root}/unencrypted`, to: `${root}/metrics` }, 'rename EPERM'],
    ['renaming encrypted/ into unencrypted/', { op: 'rename', from: `${root}/encrypted`, to: `${root}/unencrypted/sub` }, 'rename EPERM'],
  ]
  for (const [what, operation, expected] of refusals) {
    t.equal(await worker.outcome(operation), expected, what)
  }
  t.equal(await worker.outcome({ op: 'write', path: `${root}/unencrypted/users`, data: 'a\n1\n' }), 'ok', 'a KPI file is fine')
  t.equal(await worker.outcome({ op: 'link', existing: `${root}/unencrypted/users`, path: `${root}/unencrypted/alias` }), 'link EPERM', 'a hard link')
  t.equal(await worker.outcome({ op: 'write', path: `${root}/unencrypted/users/x`, data: '1\n' }), 'open ENOTDIR', 'files are flat: nothing under a file')
  t.equal(await worker.outcome({ op: 'write', path: `${root}/unencrypted/.staged`, data: 'a\n1\n' }), 'ok')
  t.equal(await worker.outcome({ op: 'rename', from: `${root}/unencrypted/.staged`, to: `${root}/users2` }), 'rename EPERM', 'renaming a file to the root')

  const shell = await mount.sh('mkfifo unencrypted/fifo')
  t.not(shell.code, 0, 'mkfifo fails')
  t.match(shell.stderr, /Operation not permitted/, 'mkfifo gets EPERM')

  t.same(await worker.value<string[]>({ op: 'readdir', path: root }).then((e) => e.sort()), ['encrypted', 'unencrypted'], 'the root is unchanged')
  t.same(await worker.value<string[]>({ op: 'readdir', path: `${root}/unencrypted` }).then((e) => e.sort()), ['.staged', 'users'], 'only the KPI file (and the staging file) are listed')
  t.same(mount.kpiTables(), ['users'], 'only the KPI has a table')
  t.equal(mount.rowCount('users'), 1)
})

t.test('names starting _fedvm_ or sqlite_ (any ASCII case) are EPERM in both directories; nothing is stored', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  const tablesBefore = mount.query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
  for (const dir of ['unencrypted', 'encrypted'] as const) {
    for (const name of ['_fedvm_files', '_fedvm_journal', '_fedvm_new', '_FEDVM_x', 'sqlite_master', 'sqlite_sequence', 'SQLite_x']) {
      const data = dir === 'encrypted' ? { base64: Buffer.alloc(64, 7).toString('base64') } : 'a\n1\n'
      t.equal(await worker.outcome({ op: 'write', path: mount.path(dir, name), data }), 'open EPERM', `${dir}/${name}`)
    }
  }
  const shell = await mount.sh('echo 1,2 > unencrypted/sqlite_stat1')
  t.match(shell.stderr, /Operation not permitted/, 'shell redirection sees EPERM too')
  t.same(mount.query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"), tablesBefore, 'no table was created or changed')
  t.same(await worker.value({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` }), [])
})
