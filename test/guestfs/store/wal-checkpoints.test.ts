import { copyFileSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Database from 'better-sqlite3'
import { KpiStore } from '../../../guestfs/store/kpi-store'
import type { Timing } from '../../../guestfs/timing'

// Checkpoints on the committing thread: after a pause in commits, and every so many commits while
// they keep coming, so the WAL starts over instead of growing without end under a steady rate. A
// real store on SQLite; the clock and the idle timer are the test's.

class TestTiming implements Timing {
  at = 0
  readonly pending: Array<{ due: number, fn: () => void }> = []
  now (): number { return this.at }
  after (ms: number, fn: () => void): void { this.pending.push({ due: this.at + ms, fn }) }
  /** Advances the clock by ms and runs the timers that came due, in order. */
  advance (ms: number): void {
    this.at += ms
    for (;;) {
      this.pending.sort((a, b) => a.due - b.due)
      if (this.pending.length === 0 || this.pending[0].due > this.at) return
      this.pending.shift()!.fn()
    }
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

async function setUp (t: tap.Test, options: { idleMs: number, maxCommits: number }) {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-wal-checkpoints-'))
  const file = join(dir, 'kpi.db')
  const timing = new TestTiming()
  const store = KpiStore.open(file, { checkpoints: { ...options, timing }, log: (line) => t.fail(`logged: ${line}`) })
  t.teardown(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })
  let value = 0
  /** One commit transaction (one row), settled. */
  const commit = async () => { await store.commit('unencrypted', 'load', Buffer.from(`v\n${value++}\n`)); await turn() }
  /** Rows in the database file alone: a copy of it without its WAL holds only what checkpoints copied. */
  const rowsInDatabaseFile = () => {
    const copy = join(dir, `copy-${Date.now()}-${Math.random()}.db`)
    copyFileSync(file, copy)
    const db = new Database(copy, { readonly: true })
    try {
      return (db.prepare('SELECT count(*) AS n FROM load').get() as { n: number }).n
    } catch {
      return 0 // not even the table yet
    } finally {
      db.close()
    }
  }
  const walBytes = () => statSync(`${file}-wal`).size
  return { timing, commit, rowsInDatabaseFile, walBytes }
}

t.test('a pause in commits checkpoints; commits that keep coming push the pause back', async (t) => {
  const { timing, commit, rowsInDatabaseFile } = await setUp(t, { idleMs: 100, maxCommits: 1000 })
  await commit()
  await commit()
  timing.advance(60)
  await commit()
  timing.advance(60)
  t.equal(rowsInDatabaseFile(), 0, 'no checkpoint 60 ms after the last commit')
  timing.advance(40)
  t.equal(rowsInDatabaseFile(), 3, 'checkpointed once commits paused for 100 ms')
})

t.test('a steady rate: a checkpoint every maxCommits commits, after their answers, and the WAL starts over', async (t) => {
  const { timing, commit, rowsInDatabaseFile, walBytes } = await setUp(t, { idleMs: 100, maxCommits: 50 })
  for (let i = 0; i < 49; i++) {
    await commit()
    timing.advance(1) // never idle
  }
  t.equal(rowsInDatabaseFile(), 0, 'nothing copied before maxCommits')
  await commit() // the 50th: the checkpoint runs in the turn after its answer
  t.equal(rowsInDatabaseFile(), 50, 'checkpointed at the 50th commit')
  const afterFirst = walBytes()
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 50; i++) {
      await commit()
      timing.advance(1)
    }
  }
  t.equal(rowsInDatabaseFile(), 550, 'every 50 commits copied')
  t.ok(walBytes() <= afterFirst, `the WAL started over each time: ${walBytes()} bytes after 550 commits, ${afterFirst} after 50`)
})
