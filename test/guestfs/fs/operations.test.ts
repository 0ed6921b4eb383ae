import t from 'tap'
import { constants } from 'node:fs'
import { constants as os } from 'node:os'
import { adaptOperations } from '../../../guestfs/fuse/adapter'
import { operations } from '../../../guestfs/fs/operations'
import { FsHarness } from '../support/fs-harness'

// DESIGN.md Contract 1, rule by rule, through guestfs's operations table as FUSE calls it, with no
// mount (test/guestfs/mount/ proves the same rules reach applications through the kernel).

const MIB = 1024 * 1024
const U = (name: string) => `/unencrypted/${name}`
const E = (name: string) => `/encrypted/${name}`
const SEALED = Buffer.alloc(80, 7)

t.test('layout: the root holds exactly encrypted/ and unencrypted/; anything else anywhere is EPERM', async (t) => {
  const h = await FsHarness.create(t)
  t.same(operations.readdir(h.state, '/'), ['encrypted', 'unencrypted'])
  t.equal(operations.getattr(h.state, '/unencrypted').mode & constants.S_IFMT, constants.S_IFDIR)
  t.throws(() => operations.getattr(h.state, '/other'), { code: 'ENOENT' })
  t.throws(() => operations.create(h.state, '/file'), { code: 'EPERM' }, 'a file at the root')
  t.throws(() => operations.mkdir(h.state, '/dir'), { code: 'EPERM' })
  t.throws(() => operations.mkdir(h.state, '/unencrypted/sub'), { code: 'EPERM' }, 'files are flat')
  t.throws(() => operations.mkdir(h.state, '/encrypted'), { code: 'EEXIST' })
  t.throws(() => operations.rmdir(h.state, '/encrypted'), { code: 'EPERM' })
  t.throws(() => operations.create(h.state, '/unencrypted/a/b'), { code: 'ENOENT' })
  for (const op of ['symlink', 'link', 'mknod', 'chmod', 'chown'] as const) {
    t.throws(() => operations[op](h.state, U('x')), { code: 'EPERM' }, op)
  }
  await t.rejects(operations.rename(h.state, '/unencrypted', '/x'), { code: 'EPERM' })
})

t.test('a write commits one row at close (FLUSH); reading gives that content, its size, and mtime = the row\'s ts', async (t) => {
  const h = await FsHarness.create(t)
  const fd = operations.create(h.state, U('users'))
  t.ok(fd >= 1, 'handles are numbered from 1 (0 means none to fuse-native)')
  const content = Buffer.from('current_users,load\n17,0.5\n')
  t.equal(operations.write(h.state, U('users'), fd, content, content.length, 0), content.length)
  t.same(h.kpiTables(), [], 'nothing stored before close')
  t.equal(operations.getattr(h.state, U('users')).size, content.length, 'the size while being written is what the writer wrote')
  t.same(operations.readdir(h.state, '/unencrypted'), ['users'], 'listed while being written')
  await operations.flush(h.state, U('users'), fd)
  operations.release(h.state, U('users'), fd)
  const [row] = h.query<{ ts: number, current_users: number, load: number }>('SELECT * FROM users')
  t.same({ ...row, ts: 0 }, { ts: 0, current_users: 17, load: 0.5 })
  t.equal(h.readFile(U('users')), content.toString())
  const stat = operations.getattr(h.state, U('users'))
  t.equal(stat.size, content.length)
  t.equal(stat.mtime, row.ts, 'mtime is the commit time')
})

t.test('every open for writing starts a new sample: truncating or appending makes no difference', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(U('k'), 'a\n1\n')
  const fd = operations.open(h.state, U('k'), constants.O_WRONLY | constants.O_APPEND)
  const more = Buffer.from('a\n2\n')
  operations.write(h.state, U('k'), fd, more, more.length, 0)
  await operations.flush(h.state, U('k'), fd)
  operations.release(h.state, U('k'), fd)
  t.same(h.query('SELECT a FROM k ORDER BY rowid'), [{ a: 1 }, { a: 2 }], 'the append is a sample of its own')
  t.equal(h.readFile(U('k')), 'a\n2\n')
})

t.test('fsync commits too; close after it commits nothing more; a read-only close commits nothing', async (t) => {
  const h = await FsHarness.create(t)
  const fd = operations.create(h.state, U('k'))
  operations.write(h.state, U('k'), fd, Buffer.from('1\n'), 2, 0)
  await operations.fsync(h.state, U('k'), 0, fd)
  await operations.flush(h.state, U('k'), fd)
  operations.release(h.state, U('k'), fd)
  const reader = operations.open(h.state, U('k'), constants.O_RDONLY)
  await operations.flush(h.state, U('k'), reader)
  operations.release(h.state, U('k'), reader)
  t.equal(h.query('SELECT * FROM k').length, 1)
})

t.test('each handle keeps its own bytes: two writers at once give two whole rows', async (t) => {
  const h = await FsHarness.create(t)
  const a = operations.create(h.state, U('k'))
  const b = operations.open(h.state, U('k'), constants.O_WRONLY | constants.O_TRUNC)
  operations.write(h.state, U('k'), a, Buffer.from('w\na\n'), 4, 0)
  operations.write(h.state, U('k'), b, Buffer.from('w\nbb\n'), 5, 0)
  await Promise.all([operations.flush(h.state, U('k'), b), operations.flush(h.state, U('k'), a)])
  t.same(h.query('SELECT w FROM k ORDER BY rowid').map((r) => r.w).sort(), ['a', 'bb'])
})

t.test('refused content: the errno at close, nothing stored, the last content kept, counted and logged', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(U('k'), 'a,b\n1,2\n')
  for (const [content, reason] of [['a\nb\nc\n', /lines/], ['a,b\n1\n', /header has/], ['a,A\n1,2\n', /duplicate/], ['ts\n1\n', /reserved/]] as const) {
    await t.rejects(h.writeFile(U('k'), content), { code: 'EINVAL', message: reason }, JSON.stringify(content))
  }
  await t.rejects(h.writeFile(E('s'), Buffer.alloc(47)), { code: 'EINVAL' }, 'shorter than a sealed box')
  t.same(h.query('SELECT a, b FROM k'), [{ a: 1, b: 2 }])
  t.equal(h.readFile(U('k')), 'a,b\n1,2\n')
  t.same(h.kpiTables(), ['k'])
  t.equal(h.store.stats.refused, 5)
  t.equal(h.logLines.length, 5)
  t.match(h.logLines[4], /refused encrypted\/s \(EINVAL\): .*refused so far: 5/)
})

t.test('over 1 MiB: EFBIG at write() and at close(), no prefix committed, a new open is fine again', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(U('b'), 'b\n7\n')
  for (const path of [U('b'), U('fresh'), E('sealed')]) {
    const fd = h.openForWrite(path)
    const first = Buffer.from(`b\n${'1'.repeat(MIB - 2)}`)
    t.equal(operations.write(h.state, path, fd, first, first.length, 0), MIB, 'exactly 1 MiB is accepted')
    t.throws(() => operations.write(h.state, path, fd, Buffer.from('2345\n'), 5, MIB), { code: 'EFBIG' }, `${path}: the write past it`)
    await t.rejects(operations.flush(h.state, path, fd), { code: 'EFBIG' }, `${path}: close() says so too`)
    operations.release(h.state, path, fd)
  }
  const fd = operations.open(h.state, U('b'), constants.O_WRONLY)
  t.throws(() => operations.ftruncate(h.state, U('b'), fd, MIB + 1), { code: 'EFBIG' }, 'ftruncate past 1 MiB')
  await t.rejects(operations.flush(h.state, U('b'), fd), { code: 'EFBIG' })
  operations.release(h.state, U('b'), fd)
  t.same(h.query('SELECT b FROM b'), [{ b: 7 }], 'no prefix was committed')
  t.same(h.kpiTables(), ['b'])
  t.equal(h.store.stats.refused, 4)
  await h.writeFile(U('b'), 'b\n8\n')
  t.same(h.query('SELECT b FROM b ORDER BY rowid'), [{ b: 7 }, { b: 8 }])
})

t.test('names: a case variant or the same name in the other directory is EEXIST at open; reserved EPERM; invalid UTF-8 EINVAL', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(U('Users'), '1\n')
  t.throws(() => operations.create(h.state, U('users')), { code: 'EEXIST' })
  t.throws(() => operations.create(h.state, E('USERS')), { code: 'EEXIST' })
  t.throws(() => operations.open(h.state, U('USERS'), constants.O_WRONLY), { code: 'EEXIST' }, 'also as OPEN (a name the kernel still caches)')
  t.throws(() => operations.create(h.state, U('_fedvm_files')), { code: 'EPERM' })
  t.throws(() => operations.create(h.state, U('SQLite_x')), { code: 'EPERM' })
  t.throws(() => operations.create(h.state, U('bad\uFFFDname')), { code: 'EINVAL' })
  t.throws(() => operations.create(h.state, U('é'.repeat(128))), { code: 'ENAMETOOLONG' })
  t.throws(() => operations.open(h.state, U('missing'), constants.O_RDONLY), { code: 'ENOENT' })
  await h.writeFile(U('x"; DROP TABLE "Users"; --'), '2\n')
  t.same(h.kpiTables(), ['Users', 'x"; DROP TABLE "Users"; --'])
})

t.test('staging files are held, not stored; renaming one onto a KPI commits it as one row', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(U('.users.swp'), 'anything\nat\nall\n')
  await h.writeFile(U('users.tmp'), 'v\n5\n')
  t.same(h.kpiTables(), [], 'no table for staging files')
  t.same(operations.readdir(h.state, '/unencrypted').sort(), ['.users.swp', 'users.tmp'])
  t.equal(h.readFile(U('.users.swp')), 'anything\nat\nall\n')
  await operations.rename(h.state, U('users.tmp'), U('users'))
  t.same(h.query('SELECT v FROM users'), [{ v: 5 }])
  t.throws(() => operations.getattr(h.state, U('users.tmp')), { code: 'ENOENT' })
  await t.rejects(operations.rename(h.state, U('.users.swp'), U('users')), { code: 'EINVAL' }, 'refused content: rename fails')
  t.equal(h.readFile(U('.users.swp')), 'anything\nat\nall\n', 'and the staging file stays')
  await t.rejects(operations.rename(h.state, U('users'), U('other')), { code: 'EPERM' }, 'a KPI keeps its name')
  operations.truncate(h.state, U('.users.swp'), 3)
  t.equal(h.readFile(U('.users.swp')), 'any', 'truncate by path changes a staging file')
})

t.test('unlink hides a KPI (table and history stay); writing the name again continues the table', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(U('k'), 'v\n1\n')
  operations.unlink(h.state, U('k'))
  t.same(operations.readdir(h.state, '/unencrypted'), [])
  t.throws(() => operations.getattr(h.state, U('k')), { code: 'ENOENT' })
  t.throws(() => operations.unlink(h.state, U('k')), { code: 'ENOENT' })
  t.throws(() => operations.create(h.state, U('K')), { code: 'EEXIST' }, 'a hidden KPI still owns its name')
  await h.writeFile(U('k'), 'v\n2\n')
  t.same(h.query('SELECT v FROM k ORDER BY rowid'), [{ v: 1 }, { v: 2 }])
})

t.test('encrypted files are stored as given', async (t) => {
  const h = await FsHarness.create(t)
  await h.writeFile(E('secret'), SEALED)
  const [row] = h.query<{ data: Buffer }>('SELECT data FROM secret')
  t.ok(row.data.equals(SEALED))
})

t.test('the adapter: values as cb(0, value), counts in the code position, an FsError as its negative errno, anything else EIO and logged', async (t) => {
  const h = await FsHarness.create(t)
  const adapted = adaptOperations(operations, h.state)
  const call = (name: string, ...args: unknown[]) => new Promise<unknown[]>((resolve) => adapted[name](...args, (...answer: unknown[]) => resolve(answer)))
  t.same(await call('readdir', '/'), [0, ['encrypted', 'unencrypted']])
  t.same(await call('mkdir', '/x', 0o755), [-os.errno.EPERM])
  const [code, fd] = await call('create', U('k'), 0o644) as [number, number]
  t.equal(code, 0)
  const data = Buffer.from('a\nb\nc\n')
  t.same(await call('write', U('k'), fd, data, data.length, 0), [data.length], 'write answers with the byte count as the code')
  t.same(await call('flush', U('k'), fd), [-os.errno.EINVAL], 'a refused sample: close() gets EINVAL')
  t.equal((await call('release', U('k'), fd))[0], 0)
  t.same(await call('read', U('k'), 999, Buffer.alloc(4), 4, 0), [-os.errno.EBADF])
  const broken = adaptOperations({ ...operations, getattr: () => { throw new TypeError('a bug') } }, h.state)
  const answer = await new Promise<unknown[]>((resolve) => broken.getattr('/', (...a: unknown[]) => resolve(a)))
  t.same(answer, [-os.errno.EIO])
  t.match(h.logLines.at(-1), /getattr failed unexpectedly: TypeError: a bug/)
})
