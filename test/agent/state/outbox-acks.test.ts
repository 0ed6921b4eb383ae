import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import type { AgentDelivery as Delivery } from '../../../protocol/relay/delivery'
import { AgentStore } from '../../../agent/state/agent-store'
import { waitFor } from '../../support/wait'

// Acknowledged deliveries leave the outbox with the next transaction (a batch of feed rows) rather
// than in one of their own per send; without one they leave within a short linger, and the store
// never hands out or counts a delivery that was acknowledged.

const delivery = (n: number): Delivery => ({ id: `d${n}`, vm: 'web-1', metric: 'kpi:users.n', format: 'raw', from: n, to: n, samples: [{ ts: n, value: n }] })

t.test('acks ride along with the next transaction, else leave within the linger', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-outbox-acks-'))
  const store = new AgentStore(dir)
  const reader = new Database(join(dir, 'agent.db'), { readonly: true })
  t.teardown(async () => {
    reader.close()
    store.close()
    await rm(dir, { recursive: true, force: true })
  })
  const rowsOnDisk = () => reader.prepare('SELECT id FROM outbox ORDER BY seq').pluck().all()

  store.transaction(() => { for (const n of [1, 2, 3]) store.enqueue('c', delivery(n)) })
  const due = store.due('c', Date.now(), 10)
  store.ack(due.slice(0, 2))
  t.strictSame(rowsOnDisk(), ['d1', 'd2', 'd3'], 'not deleted on their own at once')

  store.transaction(() => store.enqueue('c', delivery(4)))
  t.strictSame(rowsOnDisk(), ['d3', 'd4'], 'deleted in the next transaction, with its own writes')

  store.ack(store.due('c', Date.now(), 1))
  t.strictSame(store.due('c', Date.now(), 10).map((d) => d.id), ['d4'], 'an acknowledged delivery is never handed out again')
  t.equal(store.queueLength('c'), 1, 'nor counted')

  store.ack(store.due('c', Date.now(), 10))
  await waitFor('the linger to delete the last one', () => rowsOnDisk().length === 0, 2000)
  t.equal(store.queueLength('c'), 0)
})

t.test('a transaction that rolls back keeps the acks pending', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-outbox-acks-'))
  const store = new AgentStore(dir)
  t.teardown(async () => {
    store.close()
    await rm(dir, { recursive: true, force: true })
  })
  store.transaction(() => { for (const n of [1, 2]) store.enqueue('c', delivery(n)) })
  store.ack(store.due('c', Date.now(), 1))
  t.throws(() => store.transaction(() => { throw new Error('a bug in the middle') }), /a bug in the middle/)
  t.strictSame(store.due('c', Date.now(), 10).map((d) => d.id), ['d2'], 'still acknowledged after the rollback')
})
