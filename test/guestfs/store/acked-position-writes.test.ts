import t from 'tap'
import Database from 'better-sqlite3'
import { AckedPosition } from '../../../guestfs/store/acked-position'
import { prepareDatabase } from '../../../guestfs/store/schema'

// When the acknowledged position reaches _fedvm_meta: with a commit at most once a second (a host
// acking every few milliseconds must not add a page to every commit), by its timer otherwise, and
// always at close. An in-memory SQLite database; the commit path's clock is the test's.

function setUp (t: tap.Test) {
  const db = new Database(':memory:')
  prepareDatabase(db, 'normal')
  const acked = new AckedPosition(db)
  t.teardown(() => { acked.persist(); db.close() })
  const stored = () => db.prepare("SELECT value FROM _fedvm_meta WHERE key = 'acked'").pluck().get() as string | undefined
  return { acked, stored }
}

t.test('with commits: written at most once a second, the rest waits', async (t) => {
  const { acked, stored } = setUp(t)
  const start = Date.now()
  acked.advance(5n)
  acked.persistIfDue(start)
  t.equal(stored(), '5', 'the first ack goes with the next commit')
  acked.advance(9n)
  acked.persistIfDue(start + 10)
  acked.advance(12n)
  acked.persistIfDue(start + 500)
  t.equal(stored(), '5', 'within the second, commits do not write it again')
  acked.persistIfDue(start + 1500)
  t.equal(stored(), '12', 'a second later the next commit does')
})

t.test('at close (persist) it is written whatever the time', async (t) => {
  const { acked, stored } = setUp(t)
  acked.advance(3n)
  acked.persistIfDue()
  acked.advance(4n)
  acked.persistIfDue()
  t.equal(stored(), '3')
  acked.persist()
  t.equal(stored(), '4')
})
