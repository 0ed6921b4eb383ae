import type Database from 'better-sqlite3'
import { parseExact } from '../exact-json'
import { requeueConditions, type RequeueChoice } from '../requeue-conditions'
import type { Delivery } from './delivery'

/**
 * The columns of a dead row as stored: which hop, how many deliveries, and the hop's reason.
 * `deadAt`, `code` and `detail` are null for rows set apart before the outbox kept them.
 */
interface DeadRowColumns {
  seq: number
  nextHop: string
  count: number
  bytes: number
  deadAt: number | null
  code: string | null
  detail: string | null
}

/**
 * A row of the relay outbox set apart because the next hop refused its deliveries for good, as the
 * operator sees it: its columns, and its deliveries' ids and VMs (never their values).
 */
export interface DeadRow extends DeadRowColumns {
  ids: string[]
  vms: string[]
}

/** A named seq that is not a dead row of the hops chosen, or a hop that is not a partner: nothing was requeued. */
export class DeadRowsNotFoundError extends Error {
  readonly code = 'dead-rows-not-found'

  constructor (readonly seqs: readonly number[], message = `no dead row ${seqs.join(', ')} to requeue (not in the outbox, already requeued, or not for the next hops and reason chosen); nothing requeued`) {
    super(message)
    this.name = 'DeadRowsNotFoundError'
  }
}

/** A dead row as read, with its deliveries' JSON. */
interface StoredRow extends DeadRowColumns {
  body: string
}

function hasOutbox (db: Database.Database): boolean {
  return db.prepare('SELECT 1 FROM "sqlite_master" WHERE "type" = \'table\' AND "name" = \'outbox\'').get() !== undefined
}

function outboxColumns (db: Database.Database): Set<string> {
  return new Set((db.prepare('PRAGMA table_info("outbox")').all() as Array<{ name: string }>).map((c) => c.name))
}

/**
 * The dead rows, oldest first (read-only: the daemon may be running beside it). An outbox the
 * daemon has not brought up to date yet (no reason columns) is read too, its reasons null.
 */
export function readDeadRows (db: Database.Database, options: { nextHop?: string, limit: number }): DeadRow[] {
  if (!hasOutbox(db)) return []
  const columns = outboxColumns(db)
  const column = (name: string, as: string): string => columns.has(name) ? `"${name}" AS "${as}"` : `NULL AS "${as}"`
  const where = options.nextHop === undefined ? '' : 'AND "next_hop" = @nextHop'
  const rows = db.prepare(`SELECT "seq", "next_hop" AS "nextHop", "count", "bytes", ${column('dead_at', 'deadAt')}, ${column('code', 'code')}, ${column('detail', 'detail')}, "body"
    FROM "outbox" WHERE "dead" = 1 ${where} ORDER BY "seq" LIMIT @limit`)
    .all({ limit: options.limit, ...(options.nextHop === undefined ? {} : { nextHop: options.nextHop }) }) as StoredRow[]
  return rows.map(({ body, ...row }) => {
    const deliveries = parseExact(body) as Delivery[]
    return { ...row, ids: deliveries.map((d) => d.id), vms: [...new Set(deliveries.map((d) => d.vm))] }
  })
}

/**
 * Which dead rows to put back: these seqs (else every one), of these next hops only, refused with
 * this code only (a row set apart before the outbox kept codes has none: never chosen by one).
 */
export interface DeadRowSelection extends RequeueChoice {
  /** The hops a requeued row may go to (the site's partners: a row for a site it no longer knows would wait forever). */
  nextHops: readonly string[]
}

/** A dead row moved back: its seq as listed, and the seq it has now at the end of the queue. */
export interface RequeuedRow {
  seq: number
  queuedAs: number
  nextHop: string
  count: number
}

/**
 * Moves the selected dead rows to the end of their hop's queue, in one write transaction: each is
 * deleted and inserted anew (a new, higher seq, so a forwarder with requests in flight still picks it
 * up), so a delivery is in exactly one of the two states before and after. A named seq that is not
 * selected rolls everything back (DeadRowsNotFoundError). The running daemon sends the rows within
 * its requeue poll (about a second); a stopped one when it starts. Only the columns the outbox had
 * from the start are written: an outbox the daemon has not brought up to date works too.
 */
export function requeueDeadRows (db: Database.Database, selection: DeadRowSelection): RequeuedRow[] {
  // An outbox the daemon has not brought up to date has no codes: no row of it is refused with one.
  if (!hasOutbox(db) || (selection.code !== undefined && !outboxColumns(db).has('code'))) {
    if (selection.seqs !== undefined && selection.seqs.length > 0) throw new DeadRowsNotFoundError(selection.seqs)
    return []
  }
  const { where, params } = requeueConditions('next_hop', selection.nextHops, selection)
  const select = db.prepare(`SELECT "seq", "next_hop" AS "nextHop", "count", "bytes", "body" FROM "outbox" WHERE "dead" = 1 AND ${where} ORDER BY "seq"`)
  const insert = db.prepare('INSERT INTO "outbox" ("next_hop", "count", "bytes", "body", "dead") VALUES (?, ?, ?, ?, 0)')
  const remove = db.prepare('DELETE FROM "outbox" WHERE "seq" = ?')
  return db.transaction(() => {
    const rows = select.all(params) as Array<Pick<StoredRow, 'seq' | 'nextHop' | 'count' | 'bytes' | 'body'>>
    const missing = (selection.seqs ?? []).filter((seq) => !rows.some((r) => r.seq === seq))
    // Thrown inside the transaction: it rolls back, so a mistyped seq moves none of the others either.
    if (missing.length > 0) throw new DeadRowsNotFoundError(missing)
    return rows.map((r): RequeuedRow => {
      remove.run(r.seq)
      const queuedAs = Number(insert.run(r.nextHop, r.count, r.bytes, r.body).lastInsertRowid)
      return { seq: r.seq, queuedAs, nextHop: r.nextHop, count: r.count }
    })
  }).immediate()
}
