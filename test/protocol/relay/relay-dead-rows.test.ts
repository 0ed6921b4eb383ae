import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ProtocolError } from '../../../protocol/errors'
import type { Delivery } from '../../../protocol/relay/delivery'
import { MONITORING_DB_FILE, openMonitoringDb } from '../../../protocol/relay/monitoring-db'
import { DeadRowsNotFoundError, readDeadRows, requeueDeadRows } from '../../../protocol/relay/relay-dead-rows'
import { waitFor } from '../../support/wait'
import { openTestRelay } from './support/test-relay'

// The relay outbox's dead rows on a real monitoring.db: a database made before the outbox kept
// the reason still works (its old dead rows listed with no reason, new ones with the hop's words);
// a requeue by another connection (as `fedvm site dead-letters --requeue` makes it) is one
// transaction, all or nothing, and the running relay sends the rows without a restart.

/** The outbox as it shipped before it kept why a row was set apart. */
const OLD_OUTBOX_DDL = `
  CREATE TABLE "outbox" ("seq" INTEGER PRIMARY KEY AUTOINCREMENT, "next_hop" TEXT NOT NULL, "count" INTEGER NOT NULL, "bytes" INTEGER NOT NULL, "body" TEXT NOT NULL, "dead" INTEGER NOT NULL DEFAULT 0);
  CREATE INDEX "outbox_hop" ON "outbox" ("next_hop", "dead", "seq");
`
const NOW = Date.parse('2026-01-02T03:04:05.000Z')

function delivery (id: string, vm = 'vm1'): Delivery {
  return { id, vm, metric: 'kpi:app.users', format: 'processed', function: 'max', from: 1000, to: 2000, value: 7 }
}

async function tempDir (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-dead-rows-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A relay of site-b for vm1 (delegated by site-a) whose next hop is played by `send`. */
function startRelay (t: { teardown (fn: () => unknown): void }, dir: string, send: (to: string, ds: Delivery[]) => Promise<unknown>) {
  const db = openMonitoringDb(dir)
  const events: Array<Record<string, unknown>> = []
  const relay = openTestRelay(t, db, {
    state: { location: (vm) => ({ vmId: vm, kind: 'partner', target: 'site-c', upstream: 'site-a', descriptor: null, version: 'v' }), formerLocations: () => [] },
    send,
    events,
  }, { now: () => NOW, requeuePollMs: 50 })
  relay.start()
  return { db, relay, events }
}

/** Another connection to the same file, as the CLI opens it beside the daemon. */
function cliConnection (t: { teardown (fn: () => unknown): void }, dir: string): Database.Database {
  const db = new Database(join(dir, MONITORING_DB_FILE), { fileMustExist: true, timeout: 10_000 })
  t.teardown(() => { if (db.open) db.close() })
  return db
}

t.test('a monitoring.db from before the outbox kept reasons: opened, its rows sent or listed, new dead rows keep the hop\'s words', async (t) => {
  const dir = await tempDir(t)
  const old = new Database(join(dir, MONITORING_DB_FILE))
  old.exec(OLD_OUTBOX_DDL)
  const insert = old.prepare('INSERT INTO "outbox" ("next_hop", "count", "bytes", "body", "dead") VALUES (?, ?, ?, ?, ?)')
  insert.run('site-a', 1, 100, JSON.stringify([delivery('old-dead')]), 1)
  insert.run('site-a', 1, 100, JSON.stringify([delivery('old-live')]), 0)
  old.close()

  const received: string[] = []
  const { db, relay } = startRelay(t, dir, async (_to, ds) => {
    if (ds.some((d) => d.id === 'bad')) throw new ProtocolError('bad-request', 'deliveries[0].value: not a number', { refused: [{ index: ds.findIndex((d) => d.id === 'bad'), id: 'bad', code: 'bad-request', retryable: false, detail: 'deliveries[0].value: not a number' }] })
    received.push(...ds.map((d) => d.id))
  })
  await waitFor('the live row sent', () => received.includes('old-live'), 5000)
  await relay.accept([delivery('good'), delivery('bad')], 'site-c')
  await waitFor('the new batch settled', () => received.includes('good') && Object.keys(relay.queued()).length === 0, 5000)

  const rows = readDeadRows(db, { limit: 10 })
  t.same(rows.map((r) => r.ids), [['old-dead'], ['bad']], 'the old dead row, then the new one')
  t.match(rows[0], { nextHop: 'site-a', count: 1, deadAt: null, code: null, detail: null, vms: ['vm1'] }, 'set apart before reasons were kept: none shown')
  t.match(rows[1], { nextHop: 'site-a', count: 1, deadAt: NOW, code: 'bad-request', detail: 'deliveries[0].value: not a number', vms: ['vm1'] }, 'the hop\'s code and words, and when')
  t.notOk(received.includes('bad') || received.includes('old-dead'), 'dead rows are not sent')
  t.same(relay.deadDeliveries(), { 'site-a': 2 }, 'counted at start, then as set apart')

  // A reader of a file no daemon brought up to date (the listing, beside a daemon of the older version).
  const dir2 = await tempDir(t)
  const older = new Database(join(dir2, MONITORING_DB_FILE))
  older.exec(OLD_OUTBOX_DDL)
  older.prepare('INSERT INTO "outbox" ("next_hop", "count", "bytes", "body", "dead") VALUES (?, ?, ?, ?, ?)').run('site-a', 1, 100, JSON.stringify([delivery('d')]), 1)
  older.close()
  const readOnly = new Database(join(dir2, MONITORING_DB_FILE), { readonly: true })
  t.teardown(() => readOnly.close())
  t.match(readDeadRows(readOnly, { limit: 10 }), [{ ids: ['d'], code: null }], 'an outbox without the new columns is read too')
  const writer = cliConnection(t, dir2)
  const [d] = readDeadRows(writer, { limit: 10 })
  t.same(requeueDeadRows(writer, { nextHops: ['site-a'], code: 'bad-request' }), [], 'its rows have no code: --reason chooses none')
  t.throws(() => requeueDeadRows(writer, { seqs: [d.seq], nextHops: ['site-a'], code: 'bad-request' }), DeadRowsNotFoundError)
  t.equal(readDeadRows(writer, { limit: 10 }).length, 1, 'still dead')
})

t.test('a requeue by another connection: all or nothing, only for the hops chosen; the running relay sends the rows without a restart', async (t) => {
  const dir = await tempDir(t)
  let refuse = true
  const received: string[] = []
  const { db, relay } = startRelay(t, dir, async (_to, ds) => {
    // Each one's own words: refused together with the same words, deliveries would share one dead row.
    if (refuse) throw new ProtocolError('not-permitted', `not yet: ${ds.map((d) => d.id).join(',')}`)
    received.push(...ds.map((d) => d.id))
  })
  await relay.accept([delivery('a')], 'site-c')
  await relay.accept([delivery('b')], 'site-c')
  await waitFor('both set apart', () => readDeadRows(db, { limit: 10 }).length === 2, 5000)
  // A row for a hop the site no longer has a partner for (its seq follows the two above).
  db.prepare('INSERT INTO "outbox" ("next_hop", "count", "bytes", "body", "dead", "code") VALUES (?, 1, 100, ?, 1, ?)').run('site-gone', JSON.stringify([delivery('g')]), 'unknown-vm')
  const [a, b, gone] = readDeadRows(db, { limit: 10 })
  t.same([a.ids, b.ids, gone.ids], [['a'], ['b'], ['g']])
  t.match(a, { code: 'not-permitted', detail: 'not yet: a' })
  t.same(readDeadRows(db, { nextHop: 'site-gone', limit: 10 }).map((r) => r.seq), [gone.seq], '--next-hop narrows the listing')

  refuse = false
  const cli = cliConnection(t, dir)
  t.throws(() => requeueDeadRows(cli, { seqs: [a.seq, 999], nextHops: ['site-a'] }), DeadRowsNotFoundError, 'an unknown seq')
  t.throws(() => requeueDeadRows(cli, { seqs: [a.seq, gone.seq], nextHops: ['site-a'] }), /no dead row .* to requeue/, 'a row of another hop')
  t.throws(() => requeueDeadRows(cli, { seqs: [a.seq], nextHops: ['site-a'], code: 'bad-request' }), DeadRowsNotFoundError, 'a seq refused with another code')
  t.same(requeueDeadRows(cli, { nextHops: ['site-a', 'site-gone'], code: 'bad-request' }), [], 'a code no dead row has: nothing chosen')
  t.equal(readDeadRows(db, { limit: 10 }).length, 3, 'nothing moved by any')
  t.same(db.prepare('SELECT count(*) FROM "outbox" WHERE "dead" = 0').pluck().get(), 0, 'and nothing queued')
  t.same(relay.deadDeliveries(), { 'site-a': 2 }, 'the gauge\'s counts: those set apart here (the row written beside the outbox is not seen until a recount)')

  const moved = requeueDeadRows(cli, { seqs: [a.seq], nextHops: ['site-a'] })
  t.match(moved, [{ seq: a.seq, nextHop: 'site-a', count: 1 }])
  t.ok(moved[0].queuedAs > gone.seq, 'queued anew at the end')
  await waitFor('the running relay to send the requeued row', () => received.includes('a'), 5000)
  t.same(readDeadRows(db, { limit: 10 }).map((r) => r.ids), [['b'], ['g']], 'gone from the dead rows')
  t.same(relay.deadDeliveries(), { 'site-a': 1, 'site-gone': 1 }, 'counted anew after another connection\'s requeue')

  t.same(requeueDeadRows(cli, { nextHops: ['site-a', 'site-gone'], code: 'not-permitted' }).map((r) => r.seq), [b.seq], '--all --reason: the rows refused with that code only')
  await waitFor('b sent', () => received.includes('b'), 5000)
  t.same(relay.deadDeliveries(), { 'site-a': 0, 'site-gone': 1 }, 'a hop with none left stays at 0')
  t.same(received, ['a', 'b'], 'each sent once')
  t.same(readDeadRows(db, { limit: 10 }).map((r) => r.ids), [['g']], 'the row for a hop that is not a partner stays')
  t.same(db.prepare('SELECT sum("count") FROM "outbox"').pluck().get(), 1, 'no copies left behind')
})
