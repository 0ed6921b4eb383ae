import t from 'tap'
import Database from 'better-sqlite3'
import { isStorageError, StorageHealth } from '../../../agent/state/storage-health'

const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL')

t.test('counts each failed write per op, logs the change of state and a reminder a minute later', async (t) => {
  const lines: string[] = []
  let now = 0
  const health = new StorageHealth((line) => lines.push(line), () => now)
  t.equal(health.up, true)
  health.succeeded()
  t.equal(lines.length, 0, 'nothing to say while writes succeed')

  health.failed('ingest', full())
  health.failed('outbox', full())
  now = 30_000
  health.failed('ingest', full())
  t.equal(health.up, false)
  t.strictSame([...health.errors], [['ingest', 2], ['outbox', 1]])
  t.equal(lines.length, 1, 'one line when writes start failing')
  t.match(lines[0], /ingest write failed \(SQLITE_FULL: database or disk is full\)/)

  now = 60_000
  health.failed('window', full())
  t.equal(lines.length, 2, 'a reminder once a minute')
  t.match(lines[1], /still failing for 60 s \(window: SQLITE_FULL/)

  now = 61_000
  health.succeeded()
  t.equal(health.up, true)
  t.match(lines[2], /writes succeed again after 61 s/)
  health.succeeded()
  t.equal(lines.length, 3)
  t.strictSame([...health.errors], [['ingest', 2], ['outbox', 1], ['window', 1]], 'counts stay (a counter)')
})

t.test('only SQLite errors are storage errors', async (t) => {
  t.ok(isStorageError(full()))
  t.notOk(isStorageError(new Error('a bug')))
})
