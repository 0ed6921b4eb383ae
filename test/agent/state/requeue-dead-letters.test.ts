import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { AgentStore } from '../../../agent/state/agent-store'
import { requeueDeadLetters } from '../../../agent/state/dead-letters'

// The move from the dead-letter store back into the outbox, on a real agent.db that the agent's
// own store wrote: what the selection picks, and that a failure half-way leaves every delivery
// where it was (one transaction: never in both tables, never in neither).

const delivery = (id: string) => ({ id, vm: 'web-1', metric: 'kpi:k.v', format: 'raw' as const, from: 1, to: 2, samples: [{ ts: 2, value: 1 }] })

async function storeWithLetters (t: { teardown (fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-requeue-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new AgentStore(dir)
  for (const [consumer, id] of [['a', 'a1'], ['a', 'a2'], ['b', 'b1'], ['a', 'a3']]) store.enqueue(consumer, delivery(id))
  for (const consumer of ['a', 'b']) {
    const due = store.due(consumer, Date.now(), 10)
    store.deadLetter(consumer, due.map((d) => ({ delivery: d, reason: { status: 400, code: d.id === 'a2' ? 'unknown-sender' : 'bad-request', detail: 'x' } })), 1000)
  }
  store.close()
  const db = new Database(join(dir, 'agent.db'))
  t.teardown(() => db.close())
  return db
}

const outboxIds = (db: Database.Database) => db.prepare('SELECT id FROM outbox ORDER BY seq').pluck().all()
const letterIds = (db: Database.Database) => db.prepare('SELECT id FROM dead_letters ORDER BY seq').pluck().all()

t.test('the selection: seqs, consumers, code; moved entries are queued afresh at the end', async (t) => {
  const db = await storeWithLetters(t)
  t.same(letterIds(db), ['a1', 'a2', 'a3', 'b1'])
  t.same(requeueDeadLetters(db, { consumers: ['a'], code: 'unknown-sender' }, 5000).map((l) => l.id), ['a2'])
  t.same(requeueDeadLetters(db, { consumers: ['a'], seqs: [4] }, 5000).map((l) => l.id), [], 'seq 4 is b1: not of consumer a')
  t.same(requeueDeadLetters(db, { consumers: ['a', 'b'], seqs: [1, 4] }, 6000).map((l) => l.id), ['a1', 'b1'])
  t.same(outboxIds(db), ['a2', 'a1', 'b1'])
  t.same(letterIds(db), ['a3'])
  t.same(db.prepare('SELECT attempts, next_attempt, queued_at FROM outbox WHERE id = ?').get('a1'), { attempts: 0, next_attempt: 0, queued_at: 6000 }, 'due at once, queued at the requeue')
  t.same(JSON.parse(db.prepare('SELECT body FROM outbox WHERE id = ?').pluck().get('b1') as string), delivery('b1'), 'the body as it was queued')
  t.same(requeueDeadLetters(db, { consumers: [] }, 7000), [], 'no consumer configured: nothing moves')
})

t.test('a failure half-way leaves every delivery where it was', async (t) => {
  const db = await storeWithLetters(t)
  // The store refuses to let go of the third entry (as a full disk or an I/O error would refuse a write).
  db.exec("CREATE TRIGGER refuse BEFORE DELETE ON dead_letters WHEN old.id = 'a3' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
  t.throws(() => requeueDeadLetters(db, { consumers: ['a', 'b'] }, 5000), /disk I\/O error/)
  t.same(outboxIds(db), [], 'nothing reached the outbox')
  t.same(letterIds(db), ['a1', 'a2', 'a3', 'b1'], 'nothing left the store')
  db.exec('DROP TRIGGER refuse')
  t.equal(requeueDeadLetters(db, { consumers: ['a', 'b'] }, 5000).length, 4)
  t.same(outboxIds(db), ['a1', 'a2', 'a3', 'b1'])
  t.same(letterIds(db), [])
})
