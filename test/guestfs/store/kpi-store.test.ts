import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { KpiStore } from '../../../guestfs/store/kpi-store'
import { distFile } from '../../support/dist-paths'

// The CSV-to-SQLite store alone: no FUSE. What it stores is checked through a second, read-only
// SQLite connection, with typeof() for the types.

type Tap = tap.Test

async function openStore (t: Tap): Promise<{ store: KpiStore, file: string, query: <T = Record<string, unknown>>(sql: string) => T[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-store-test-'))
  const file = join(dir, 'kpi.db')
  const store = KpiStore.open(file)
  let closed = false
  const close = async () => { if (!closed) { closed = true; await store.close() } }
  t.teardown(async () => { await close(); await rm(dir, { recursive: true, force: true }) })
  const query = <T = Record<string, unknown>>(sql: string): T[] => {
    const db = new Database(file, { readonly: true })
    try { return db.prepare(sql).all() as T[] } finally { db.close() }
  }
  return { store, file, query }
}

const csv = (text: string) => Buffer.from(text, 'utf8')

t.test('one table per name: ts INTEGER NOT NULL then the columns in first-seen order; the promise gives the row\'s ts', async (t) => {
  const { store, query } = await openStore(t)
  const before = Date.now()
  const ts = await store.commit('unencrypted', 'users', csv('current_users,load\n17,0.42\n'))
  t.ok(ts >= before && ts <= Date.now(), 'ts is the commit time in Unix milliseconds')
  t.same(query('SELECT name, type, "notnull" FROM pragma_table_info(\'users\')'), [
    { name: 'ts', type: 'INTEGER', notnull: 1 },
    { name: 'current_users', type: '', notnull: 0 },
    { name: 'load', type: '', notnull: 0 },
  ])
  t.same(query('SELECT ts, current_users, load FROM users'), [{ ts, current_users: 17, load: 0.42 }])
})

t.test('values are typed INTEGER, REAL, NULL, TEXT (checked with SQLite typeof())', async (t) => {
  const { store, query } = await openStore(t)
  await store.commit('unencrypted', 'types', csv('i,big,r,e,n,s,q\n-12,9223372036854775807,3.25,1e2,,hello,"1,5"\n'))
  t.same(query('SELECT typeof(i) i, typeof(big) big, typeof(r) r, typeof(e) e, typeof(n) n, typeof(s) s, typeof(q) q FROM types'),
    [{ i: 'integer', big: 'integer', r: 'real', e: 'real', n: 'null', s: 'text', q: 'text' }])
  t.same(query('SELECT CAST(big AS TEXT) AS big, i, r, e, s, q FROM types'), [{ big: '9223372036854775807', i: -12, r: 3.25, e: 100, s: 'hello', q: '1,5' }])
})

t.test('a new column later is added; older rows read NULL; ASCII case maps to the existing column', async (t) => {
  const { store, query } = await openStore(t)
  await store.commit('unencrypted', 'grow', csv('a\n1\n'))
  await store.commit('unencrypted', 'grow', csv('A,b\n2,3\n'))
  await store.commit('unencrypted', 'grow', csv('4\n'))
  t.same(query('SELECT name FROM pragma_table_info(\'grow\')').map((row) => (row as { name: string }).name), ['ts', 'a', 'b', 'column1'])
  t.same(query('SELECT a, b, column1 FROM grow ORDER BY rowid'), [
    { a: 1, b: null, column1: null }, { a: 2, b: 3, column1: null }, { a: null, b: null, column1: 4 },
  ])
})

t.test('refused content rejects with the errno, stores nothing and is counted', async (t) => {
  const { store, query } = await openStore(t)
  await store.commit('unencrypted', 'kpi', csv('a\n1\n'))
  const refused: Array<[string, Buffer]> = [
    ['three lines', csv('a\n1\n2\n')], ['count mismatch', csv('a,b\n1\n')], ['duplicate', csv('a,A\n1,2\n')], ['ts', csv('ts\n1\n')],
  ]
  for (const [what, content] of refused) {
    await t.rejects(store.commit('unencrypted', 'kpi', content), { name: 'FsError', code: 'EINVAL' }, what)
    await t.rejects(store.commit('unencrypted', 'fresh', content), { code: 'EINVAL' }, `${what} (new name)`)
  }
  await t.rejects(store.commit('unencrypted', 'big', Buffer.alloc(1024 * 1024 + 1, 0x31)), { code: 'EFBIG' }, 'more than 1 MiB')
  t.equal(store.stats.refused, refused.length * 2 + 1, 'every refusal is counted')
  t.equal(store.stats.committed, 1)
  t.same(query('SELECT a FROM kpi'), [{ a: 1 }], 'the existing KPI is unchanged')
  t.same(query("SELECT name FROM sqlite_schema WHERE name IN ('fresh', 'big')"), [], 'no table for the new names')
  t.same(store.visibleFile('unencrypted', 'kpi')?.content.toString(), 'a\n1\n', 'the last committed content is kept')
})

t.test('names: exact, any UTF-8, SQL metacharacters; EEXIST for a case variant or the other directory; EPERM for reserved', async (t) => {
  const { store, query } = await openStore(t)
  const awkward = ['x"; DROP TABLE users; --', 'it\'s', 'température ☀', 'a b', 'Users']
  for (const name of awkward) await store.commit('unencrypted', name, csv(`v\n${awkward.indexOf(name)}\n`))
  t.same(query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_fedvm\\_%' ESCAPE '\\' ORDER BY name").map((row) => (row as { name: string }).name),
    [...awkward].sort())
  for (const [dir, name, code] of [
    ['unencrypted', 'users', 'EEXIST'], ['unencrypted', 'USERS', 'EEXIST'], ['encrypted', 'Users', 'EEXIST'],
    ['unencrypted', '_fedvm_files', 'EPERM'], ['unencrypted', 'SQLITE_master', 'EPERM'], ['encrypted', '_FEDVM_x', 'EPERM'],
    ['unencrypted', 'bad\uFFFDname', 'EINVAL'], ['unencrypted', 'é'.repeat(128), 'ENAMETOOLONG'],
  ] as const) {
    t.throws(() => store.checkWritable(dir, name), { code }, `checkWritable ${dir}/${name.slice(0, 20)}`)
    const content = dir === 'encrypted' ? Buffer.alloc(64) : csv('v\n1\n')
    await t.rejects(store.commit(dir, name, content), { code }, `commit ${dir}/${name.slice(0, 20)}`)
  }
  t.same(query('SELECT v FROM "Users"'), [{ v: 4 }], 'no variant added a row')
})

t.test('encrypted: (ts INTEGER NOT NULL, data BLOB NOT NULL), bytes stored as given; shorter than a sealed box is EINVAL', async (t) => {
  const { store, query } = await openStore(t)
  const sealed = Buffer.concat([Buffer.from('\u0000\n,\n"'), Buffer.alloc(60, 0xab)])
  await store.commit('encrypted', 'secret', sealed)
  t.same(query('SELECT name, type, "notnull" FROM pragma_table_info(\'secret\')'), [
    { name: 'ts', type: 'INTEGER', notnull: 1 }, { name: 'data', type: 'BLOB', notnull: 1 },
  ])
  const [row] = query<{ kind: string, data: Buffer }>('SELECT typeof(data) AS kind, data FROM secret')
  t.equal(row.kind, 'blob')
  t.ok(row.data.equals(sealed), 'the exact bytes')
  await t.rejects(store.commit('encrypted', 'short', Buffer.alloc(47)), { code: 'EINVAL' })
  t.same(query("SELECT name FROM sqlite_schema WHERE name = 'short'"), [])
})

t.test('group commit: many commits at once become one row each; a bad one in the batch fails alone', async (t) => {
  const { store, query } = await openStore(t)
  const commits = Array.from({ length: 200 }, (_, i) => store.commit('unencrypted', `k${i % 4}`, csv(`writer,seq\n${i % 4},${i}\n`)))
  // Two new names that differ in case, in the same batch: both pass the early check, one must fail.
  const racing = [store.commit('unencrypted', 'race', csv('v\n1\n')), store.commit('unencrypted', 'RACE', csv('v\n2\n'))]
  const results = await Promise.allSettled([...commits, ...racing])
  t.same(results.slice(0, 200).filter((r) => r.status === 'rejected'), [], 'all 200 committed')
  t.same(results.slice(200).map((r) => r.status), ['fulfilled', 'rejected'], 'the case variant lost')
  t.match((results[201] as PromiseRejectedResult).reason, { code: 'EEXIST' })
  const rows = [0, 1, 2, 3].flatMap((k) => query<{ writer: number, seq: number }>(`SELECT writer, seq FROM k${k}`))
  t.equal(rows.length, 200, 'one row per commit')
  t.same(rows.map((row) => row.seq).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i), 'none lost or doubled')
  t.ok(rows.every((row) => row.writer === row.seq % 4), 'each row is whole')
  t.same(query('SELECT v FROM race'), [{ v: 1 }])
  t.same(query("SELECT name FROM sqlite_schema WHERE name = 'RACE' COLLATE BINARY"), [])
})

t.test('hide: unlisted, history kept, writing again continues; all of it survives reopening', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-store-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'kpi.db')
  let store = KpiStore.open(file)
  const firstTs = await store.commit('unencrypted', 'gone', csv('v\n1\n'))
  await store.commit('unencrypted', 'kept', csv('v\n1\n'))
  store.hide('unencrypted', 'gone')
  t.equal(store.visibleFile('unencrypted', 'gone'), undefined)
  t.same(store.listVisible('unencrypted').map((f) => f.name), ['kept'])
  t.throws(() => store.hide('unencrypted', 'gone'), { code: 'ENOENT' })
  t.throws(() => store.checkWritable('unencrypted', 'GONE'), { code: 'EEXIST' }, 'a hidden KPI still owns its name')
  await store.close()

  store = KpiStore.open(file)
  t.teardown(() => store.close())
  t.same(store.listVisible('unencrypted').map((f) => f.name), ['kept'], 'still hidden after reopening')
  t.equal(store.visibleFile('unencrypted', 'kept')?.content.toString(), 'v\n1\n', 'content reloaded')
  const again = await store.commit('unencrypted', 'gone', csv('v\n2\n'))
  t.ok(again >= firstTs, 'ts does not go back after reopening')
  t.equal(store.visibleFile('unencrypted', 'gone')?.ts, again)
  const db = new Database(file, { readonly: true })
  t.teardown(() => db.close())
  t.same(db.prepare('SELECT v FROM gone ORDER BY rowid').all(), [{ v: 1 }, { v: 2 }], 'the table continues')
})

t.test('the store and the CSV parser never load FUSE', async (t) => {
  const script = `
    require(${JSON.stringify(distFile('guestfs', 'store', 'kpi-store.js'))})
    require(${JSON.stringify(distFile('guestfs', 'csv', 'parse-kpi-csv.js'))})
    const loaded = Object.keys(require.cache).filter((file) => /fuse/i.test(file))
    process.stdout.write(JSON.stringify(loaded))`
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script])
  t.same(JSON.parse(stdout), [], 'no fuse module in the require cache')
})

t.test('rowsAfter (the feed\'s catch-up) reads rows in commit order across tables, also after a table gained a column', async (t) => {
  const { store } = await openStore(t)
  await store.commit('unencrypted', 'grow', csv('a\n1\n'))
  await store.commit('unencrypted', 'other', csv('x\n9\n'))
  t.same(store.rowsAfter(0n, 10).map((row) => [row.seq, row.name, row.columns, row.values]), [[1n, 'grow', ['a'], [1n]], [2n, 'other', ['x'], [9n]]])
  await store.commit('unencrypted', 'grow', csv('a,b\n2,3\n'))
  t.same(store.rowsAfter(1n, 10).map((row) => [row.seq, row.name, row.columns, row.values]), [
    [2n, 'other', ['x'], [9n]], [3n, 'grow', ['a', 'b'], [2n, 3n]],
  ], 'the new column is read (SQLite prepares a cached read again after a schema change)')
  t.same(store.rowsAfter(0n, 2).map((row) => row.seq), [1n, 2n], 'limit')
})
