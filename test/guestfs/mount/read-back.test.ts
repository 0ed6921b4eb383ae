import t from 'tap'
import { stat, readFile } from 'node:fs/promises'
import { TestMount } from '../../support/guestfs-mount'

// Contract 1: "Reading a file gives the content last committed (a refused write changes nothing);
// its size matches that content and its mtime is that row's ts." And: "Every open for writing
// starts a new sample (truncating or appending makes no difference)"; "A row is committed when the
// file is closed (FUSE flush) or fsynced".

const MS = 1_000_000n

function lastTs (mount: TestMount, table: string): bigint {
  const rows = mount.query<{ ts: number }>(`SELECT ts FROM "${table}" ORDER BY rowid DESC LIMIT 1`)
  return BigInt(rows[0].ts)
}

t.test('reading gives the last committed content, byte for byte, with its size and mtime = ts', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  const file = mount.path('unencrypted', 'users')
  const before = Date.now()
  for (const content of ['current_users,load\n17,0.42\n', '"quoted, label",b\r\n"x ""y""",2\r\n', '5']) {
    t.equal(await app.outcome({ op: 'write', path: file, data: content }), 'ok')
    t.equal((await app.read(file)).toString('utf8'), content, `reads back ${JSON.stringify(content)}`)
    const st = await app.stat(file)
    t.equal(st.size, Buffer.byteLength(content), 'size matches the content')
    t.equal(st.mtimeNs, lastTs(mount, 'users') * MS, 'mtime is the row\'s ts (ms)')
  }
  const ts = Number(lastTs(mount, 'users'))
  t.ok(ts >= before - 5 && ts <= Date.now() + 5, 'ts is Unix time in milliseconds, at commit')
  // The test process may read too, with async calls (the mount is served by another process).
  t.equal(await readFile(file, 'utf8'), '5')
  t.equal((await stat(file, { bigint: true })).mtimeNs, lastTs(mount, 'users') * MS)
})

t.test('a refused write leaves the read-back unchanged: content, size and mtime', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  const file = mount.path('unencrypted', 'load')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'a,b\n1,2\n' }), 'ok')
  const committed = await app.stat(file)
  for (const refused of ['a,b\n1,2\n3,4\n5,6\n7,8\n', 'ts\n1\n']) {
    t.equal(await app.outcome({ op: 'write', path: file, data: refused }), 'close EINVAL', `refused ${JSON.stringify(refused)}`)
    t.equal((await app.read(file)).toString(), 'a,b\n1,2\n', 'content unchanged right after the refusal')
    const st = await app.stat(file)
    t.equal(st.size, committed.size, 'size unchanged')
    t.equal(st.mtimeNs, committed.mtimeNs, 'mtime unchanged')
    t.equal(mount.rowCount('load'), 1, 'no row')
  }
  t.equal(await app.outcome({ op: 'write', path: file, data: 'x' }), 'ok', 'then a valid one-line write')
  t.equal((await app.read(file)).toString(), 'x', 'is read back')
  t.equal(mount.rowCount('load'), 2)
})

t.test('every open for writing starts a new sample: appending or writing without O_TRUNC stores only what this open wrote', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  const file = mount.path('unencrypted', 'sample')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'a,b\n100000,200000\n' }), 'ok')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'a,b\n1,2\n', flags: 'a' }), 'ok', 'append (O_APPEND)')
  t.equal(await app.outcome({ op: 'write', path: file, data: 'a\n3\n', flags: 'r+' }), 'ok', 'read-write without O_TRUNC, shorter than before')
  const shell = await mount.sh('printf "a\\n4\\n" >> unencrypted/sample')
  t.equal(shell.code, 0, 'shell >>')
  t.same(mount.query('SELECT a, b FROM sample ORDER BY rowid'), [
    { a: 100000, b: 200000 }, { a: 1, b: 2 }, { a: 3, b: null }, { a: 4, b: null },
  ], 'each open made one row of exactly what it wrote')
  t.equal((await app.read(file)).toString(), 'a\n4\n')
})

t.test('fsync() commits: the row exists before close(), and close() adds no second row', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  const fd = await app.value<number>({ op: 'open', path: mount.path('unencrypted', 'synced'), flags: 'w' })
  await app.value({ op: 'writeFd', fd, data: 'v\n1\n' })
  t.equal(await app.outcome({ op: 'fsync', fd }), 'ok')
  t.same(mount.query('SELECT v FROM synced'), [{ v: 1 }], 'committed at fsync, while the file is still open')
  t.equal(await app.outcome({ op: 'close', fd }), 'ok')
  t.equal(mount.rowCount('synced'), 1, 'close after fsync with nothing new written adds no row')
  t.equal((await app.read(mount.path('unencrypted', 'synced'))).toString(), 'v\n1\n')
})

t.test('fsync() returns the errno of refused content, and nothing is stored', async (t) => {
  const mount = await TestMount.create(t)
  const app = mount.app
  const fd = await app.value<number>({ op: 'open', path: mount.path('unencrypted', 'bad'), flags: 'w' })
  await app.value({ op: 'writeFd', fd, data: 'a,a\n1,2\n' })
  t.equal(await app.outcome({ op: 'fsync', fd }), 'fsync EINVAL')
  t.equal(mount.totalRows(), 0)
  await app.outcome({ op: 'close', fd })
  t.equal(mount.totalRows(), 0, 'nothing stored after close either')
  t.same(mount.kpiTables(), [])
})
