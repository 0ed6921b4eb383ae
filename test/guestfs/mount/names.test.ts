import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'

const label = (name: string): string => JSON.stringify(name.length > 40 ? `${name.slice(0, 12)}…(${name.length} chars)` : name)

// Contract 1: one table per file name, named exactly as the file (quoted identifier: any valid UTF-8
// name is safe, SQL metacharacters included). SQLite ignores ASCII case in names, so a case variant
// of an existing KPI, or the same name in the other directory, is EEXIST; a name that is not valid
// UTF-8 is EINVAL.

const SEALED = { base64: Buffer.alloc(80, 9).toString('base64') } // encrypted/ takes any bytes (a sealed box's length)

t.test('awkward but valid names: each becomes a table of exactly that name, and nothing else is touched', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  const names = [
    'users',
    'current users', // spaces
    ' leading and trailing ',
    'it\'s "quoted"',
    'x"; DROP TABLE users; --',
    'Robert\'); DROP TABLE users;--',
    'a]b[c`d`',
    '50% off; SELECT * FROM sqlite_schema',
    'température ☀ 温度 📈',
    'tab\there',
    'back\\slash',
    '-dash',
    'a.b.c',
    'x'.repeat(255),
  ]
  for (const [i, name] of names.entries()) {
    t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', name), data: `value\n${i}\n` }), 'ok', label(name))
  }
  t.same(mount.kpiTables().sort(), [...names].sort(), 'one table per file name, named exactly as the file')
  for (const [i, name] of names.entries()) {
    t.same(mount.rows(name).map((row) => row.value), [i], `${label(name)} holds its own row`)
    t.equal((await worker.read(mount.path('unencrypted', name))).toString(), `value\n${i}\n`, `${label(name)} reads back`)
  }
  const listed = await worker.value<string[]>({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` })
  t.same(listed.sort(), [...names].sort(), 'the directory lists every name as given')

  // A shell application writing the nastiest name the usual way.
  const shell = await mount.sh('printf \'value\\n99\\n\' > \'unencrypted/x"; DROP TABLE users; --\'')
  t.equal(shell.code, 0, shell.stderr)
  t.same(mount.rows('x"; DROP TABLE users; --').map((row) => row.value), [names.indexOf('x"; DROP TABLE users; --'), 99])
  t.same(mount.rows('users').map((row) => row.value), [0], 'the users table is untouched')
})

t.test('a name of more than 255 bytes is refused and stores nothing', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'é'.repeat(128)), data: '1\n' }), 'open ENAMETOOLONG')
  t.equal(mount.totalRows(), 0)
  t.same(mount.kpiTables(), [])
})

t.test('a name that is not valid UTF-8 is EINVAL, in both directories, and stores nothing', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  for (const dir of ['unencrypted', 'encrypted'] as const) {
    for (const bytes of [[0xff], [0x6b, 0x70, 0x69, 0xc3], [0xed, 0xa0, 0x80]]) {
      const path = { base64: Buffer.concat([Buffer.from(`${mount.mountpoint}/${dir}/`), Buffer.from(bytes)]).toString('base64') }
      const data = dir === 'encrypted' ? SEALED : 'a\n1\n'
      t.equal(await worker.outcome({ op: 'write', path, data }), 'open EINVAL', `${dir}/ + bytes ${Buffer.from(bytes).toString('hex')}`)
    }
  }
  const shell = await mount.sh('echo 1,2 > "unencrypted/$(printf \'\\xff\\xfe\')"')
  t.match(shell.stderr, /Invalid argument/, 'shell redirection sees EINVAL')
  t.equal(mount.totalRows(), 0)
  t.same(mount.kpiTables(), [])
})

t.test('a case variant of an existing KPI is EEXIST (ASCII case only), and stores nothing', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'Users'), data: 'n\n1\n' }), 'ok')
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'café'), data: 'n\n1\n' }), 'ok')
  for (const variant of ['users', 'USERS', 'uSERS', 'CAFé']) {
    t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', variant), data: 'n\n2\n' }), 'open EEXIST', variant)
  }
  const shell = await mount.sh('echo 3 > unencrypted/USERS')
  t.match(shell.stderr, /File exists/, 'shell redirection sees EEXIST')
  t.same(mount.kpiTables().sort(), ['Users', 'café'])
  t.same(mount.rows('Users').map((row) => row.n), [1], 'the existing KPI got no row from its variants')
  t.equal(mount.rowCount('café'), 1)

  // SQLite folds ASCII letters only: 'CAFÉ' is another name than 'café', so it is a KPI of its own.
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'CAFÉ'), data: 'n\n3\n' }), 'ok', 'CAFÉ (non-ASCII É) is a different name')
  t.same(mount.kpiTables().sort(), ['CAFÉ', 'Users', 'café'])
  t.equal(mount.rowCount('CAFÉ'), 1)
})

t.test('the same name in the other directory is EEXIST (either way round), and stores nothing', async (t) => {
  const mount = await TestMount.create(t)
  const worker = mount.worker()
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'users'), data: 'n\n1\n' }), 'ok')
  t.equal(await worker.outcome({ op: 'write', path: mount.path('encrypted', 'secret'), data: SEALED }), 'ok')
  t.equal(await worker.outcome({ op: 'write', path: mount.path('encrypted', 'users'), data: SEALED }), 'open EEXIST', 'encrypted/users')
  t.equal(await worker.outcome({ op: 'write', path: mount.path('encrypted', 'USERS'), data: SEALED }), 'open EEXIST', 'encrypted/USERS')
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'secret'), data: 'n\n1\n' }), 'open EEXIST', 'unencrypted/secret')
  t.equal(await worker.outcome({ op: 'write', path: mount.path('unencrypted', 'Secret'), data: 'n\n1\n' }), 'open EEXIST', 'unencrypted/Secret')
  t.same(mount.kpiTables().sort(), ['secret', 'users'])
  t.equal(mount.rowCount('users'), 1)
  t.equal(mount.rowCount('secret'), 1)
  t.same(await worker.value({ op: 'readdir', path: `${mount.mountpoint}/encrypted` }), ['secret'])
  t.same(await worker.value({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` }), ['users'])
})

t.test('two new names that differ only in case, written at the same time: one wins, the other gets EEXIST', async (t) => {
  const mount = await TestMount.create(t)
  const first = mount.worker()
  const second = mount.worker()
  const [a, b] = await Promise.all([
    first.value<number>({ op: 'open', path: mount.path('unencrypted', 'load'), flags: 'w' }),
    second.value<number>({ op: 'open', path: mount.path('unencrypted', 'LOAD'), flags: 'w' }),
  ])
  await first.value({ op: 'writeFd', fd: a, data: 'v\n1\n' })
  await second.value({ op: 'writeFd', fd: b, data: 'v\n2\n' })
  t.equal(await first.outcome({ op: 'close', fd: a }), 'ok', 'the first close commits')
  t.equal(await second.outcome({ op: 'close', fd: b }), 'close EEXIST', 'the second close is refused')
  t.same(mount.kpiTables(), ['load'])
  t.same(mount.rows('load').map((row) => row.v), [1])
})
