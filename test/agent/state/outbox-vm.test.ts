import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { AgentStore } from '../../../agent/state/agent-store'

// Each queued delivery keeps its VM beside its body, so a transport routes it (NATS subjects are per
// VM) without decoding the body. An outbox written before that column existed gains it; its rows
// come back with vm null (the transport decodes those few).

t.test('an outbox from before the vm column: upgraded in place, old rows kept, new rows carry their VM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-outbox-vm-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const old = new Database(join(dir, 'agent.db'))
  old.exec(`CREATE TABLE outbox (seq INTEGER PRIMARY KEY, consumer TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0)`)
  old.prepare('INSERT INTO outbox (consumer, id, body) VALUES (?, ?, ?)').run('c', 'old-1', JSON.stringify({ id: 'old-1', vm: 'web-1' }))
  old.close()

  const store = new AgentStore(dir)
  t.teardown(() => store.close())
  store.transaction(() => store.enqueue('c', { id: 'new-1', vm: 'db.2', metric: 'kpi:users.n', format: 'raw', from: 1, to: 1, samples: [{ ts: 1, value: 1 }] }))
  t.strictSame(store.due('c', Date.now(), 10).map((d) => [d.id, d.vm]), [['old-1', null], ['new-1', 'db.2']])
})
