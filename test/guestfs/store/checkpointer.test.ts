import t from 'tap'
import { copyFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { distFile } from '../../support/dist-paths'

// The background checkpoint thread (compiled: a worker runs a .js file). It copies the WAL into the
// database off the commit path; if it dies, the store is told (it then checkpoints with commits)
// and stopping still completes (a shutdown once waited forever for a thread that was gone).

type CheckpointerModule = typeof import('../../../guestfs/store/checkpointer')
const { Checkpointer } = require(distFile('guestfs', 'store', 'checkpointer.js')) as CheckpointerModule

t.test('it checkpoints a WAL that commits leave behind, and stops', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-checkpoint-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'kpi.db')
  const db = new Database(file)
  t.teardown(() => db.close())
  db.pragma('journal_mode = WAL')
  db.pragma('wal_autocheckpoint = 0')
  db.exec('CREATE TABLE t (x)')
  const insert = db.prepare('INSERT INTO t VALUES (?)')
  for (let i = 0; i < 100; i++) insert.run(i)
  let died = false
  const checkpointer = new Checkpointer(file, () => {}, () => { died = true }, 20)
  const deadline = Date.now() + 10_000
  let copied = 0
  while (copied < 100 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    // What a checkpoint copied is in the database file itself: a copy of that file alone (no WAL) holds it.
    const copy = join(dir, `copy-${Date.now()}.db`)
    copyFileSync(file, copy)
    const direct = new Database(copy, { readonly: true })
    try {
      copied = (direct.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
    } catch {
      copied = 0 // not even the table yet
    } finally {
      direct.close()
    }
  }
  t.equal(copied, 100, 'the rows reached the database file')
  await checkpointer.stop()
  t.notOk(died, 'a stop is no death')
})

t.test('a thread that dies is reported, and stop() still resolves', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-checkpoint-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const lines: string[] = []
  let died!: () => void
  const death = new Promise<void>((resolve) => { died = resolve })
  // The thread is unref'd (it never holds guestfs open); here nothing else would keep the test alive.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  // A database in a folder that does not exist: the thread fails as it opens it.
  const checkpointer = new Checkpointer(join(dir, 'missing', 'kpi.db'), (line) => lines.push(line), () => died(), 20)
  await death
  t.match(lines.join('\n'), /checkpoint thread died: .*checkpoints now run with commits/)
  await checkpointer.stop()
  t.pass('stopped')
})
