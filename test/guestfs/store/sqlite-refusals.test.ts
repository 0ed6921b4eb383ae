import t from 'tap'
import { execFile } from 'node:child_process'
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { KpiStore } from '../../../guestfs/store/kpi-store'

// Contract 1: "more columns than SQLite allows is EINVAL; a full disk is ENOSPC", and a refused
// sample stores nothing. Both refusals come from SQLite itself (not from guestfs's own checks);
// the full disk is a real one: a small tmpfs this test mounts for the database.

const run = promisify(execFile)
const csv = (text: string) => Buffer.from(text, 'utf8')

t.test('more columns than SQLite allows in a table → EINVAL, nothing stored; the store goes on', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-store-test-'))
  const store = KpiStore.open(join(dir, 'kpi.db'))
  t.teardown(async () => { await store.close(); await rm(dir, { recursive: true, force: true }) })
  const wide = (count: number, from = 0) => {
    const names = Array.from({ length: count }, (_, i) => `c${from + i}`)
    return csv(`${names.join(',')}\n${names.map((_, i) => i).join(',')}\n`)
  }
  await t.rejects(store.commit('unencrypted', 'fresh', wide(2100)), { name: 'FsError', code: 'EINVAL', message: /more than a KPI table can hold/ }, 'a new KPI')
  await store.commit('unencrypted', 'kpi', wide(1500))
  await t.rejects(store.commit('unencrypted', 'kpi', wide(600, 1500)), { code: 'EINVAL' }, 'new columns that take an existing KPI past the limit')
  t.equal(store.stats.refused, 2, 'both counted')
  await store.commit('unencrypted', 'kpi', csv('c0\n7\n'))
  const db = new Database(join(dir, 'kpi.db'), { readonly: true })
  t.teardown(() => db.close())
  t.same(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'fresh'").all(), [], 'no table for the refused new KPI')
  t.equal((db.prepare("SELECT count(*) AS n FROM pragma_table_info('kpi')").get() as { n: number }).n, 1501, 'no column was added by the refused sample')
  t.same(db.prepare('SELECT c0 FROM kpi ORDER BY rowid').all(), [{ c0: 0 }, { c0: 7 }], 'the rows before and after it')
})

/** Fills the filesystem holding `dir` with one file until ENOSPC; returns its path (deleting it frees the space). */
function fillDisk (dir: string): string {
  const filler = join(dir, 'filler')
  const fd = openSync(filler, 'w')
  const block = Buffer.alloc(64 * 1024, 0x55)
  try {
    for (let size = block.length; size > 0;) {
      try {
        writeSync(fd, block, 0, size)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
        size >>= 1 // fill the last partial blocks too
      }
    }
  } finally {
    closeSync(fd)
  }
  return filler
}

t.test('a full disk → ENOSPC (not EIO), nothing stored; commits work again once space returns', { skip: process.getuid?.() !== 0 && 'mounting a tmpfs needs root' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-full-disk-'))
  await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'fedvm-test', dir])
  let store: KpiStore | undefined
  t.teardown(async () => {
    await store?.close().catch(() => {})
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]))
    await rm(dir, { recursive: true, force: true })
  })
  store = KpiStore.open(join(dir, 'kpi.db'))
  await store.commit('unencrypted', 'kpi', csv('v\n1\n'))
  const filler = fillDisk(dir)
  // A sample larger than the WAL so far: its pages must take new blocks of the full disk.
  const big = csv(`v,pad\n2,${'x'.repeat(256 * 1024)}\n`)
  await t.rejects(store.commit('unencrypted', 'kpi', big), { name: 'FsError', code: 'ENOSPC', message: /disk holding the KPI database is full/ }, 'an existing KPI')
  await t.rejects(store.commit('unencrypted', 'fresh', big), { code: 'ENOSPC' }, 'a new KPI')
  t.equal(store.stats.refused, 2)
  t.equal(store.visibleFile('unencrypted', 'kpi')?.content.toString(), 'v\n1\n', 'the last committed content is unchanged')
  t.equal(store.visibleFile('unencrypted', 'fresh'), undefined)

  unlinkSync(filler)
  await store.commit('unencrypted', 'kpi', big)
  await store.close()
  store = undefined
  const db = new Database(join(dir, 'kpi.db'), { readonly: true })
  try {
    t.same(db.prepare('SELECT v FROM kpi ORDER BY rowid').all(), [{ v: 1 }, { v: 2 }], 'the refused samples left nothing; the one after the space returned is stored')
    t.same(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'fresh'").all(), [])
  } finally {
    db.close()
  }
})
