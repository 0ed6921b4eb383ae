import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { UsageError } from '../errors'
import { MONITORING_DB_FILE } from '../relay/monitoring-db'
import { readDeadRows, requeueDeadRows, DeadRowsNotFoundError, type DeadRowSelection, type RequeuedRow } from '../relay/relay-dead-rows'
import { loadSiteConfig } from './load-config'

/** How long a requeue waits for the running daemon's write transaction to end (its transactions take milliseconds). */
const BUSY_TIMEOUT_MS = 10_000
const DEFAULT_LIMIT = 1000

/**
 * `fedvm site dead-letters --config FILE [--next-hop SITE] [--limit N] [--requeue (--id N ...|--all) [--reason CODE]]`:
 * the deliveries this site relays that the next hop refused for good (dead rows of the relay outbox
 * in `stateDir/monitoring.db`), oldest first, one JSON object a line: seq, next hop, how many
 * deliveries (their ids and VMs, never their values), when and why the hop refused them. It reads
 * beside the running daemon and changes nothing. With `--requeue` it moves the chosen rows back to
 * the end of their hop's queue in one transaction, the daemon running (it sends them within about
 * a second) or stopped (it sends them when it starts), and prints a line per row moved; `--reason`
 * narrows the choice to rows the hop refused with that code. Only rows for partners the config has
 * are moved. How many rows moved is said on stderr, also when none did: a code or hop no dead row
 * has is a quiet success otherwise.
 */
export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      'next-hop': { type: 'string' },
      limit: { type: 'string' },
      requeue: { type: 'boolean' },
      id: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      reason: { type: 'string' },
    },
  })
  if (values.config === undefined) throw new UsageError('--config FILE is required')
  const ids = (values.id ?? []).map(seqOf)
  if (values.requeue !== true) {
    if (ids.length > 0 || values.all === true || values.reason !== undefined) throw new UsageError('--id, --all and --reason choose what --requeue moves; add --requeue')
    const limit = values.limit === undefined ? DEFAULT_LIMIT : positive('--limit', values.limit)
    const config = await loadSiteConfig(values.config)
    for (const line of listDeadRows(join(config.stateDir, MONITORING_DB_FILE), values['next-hop'], limit)) process.stdout.write(`${line}\n`)
    return
  }
  if ((ids.length > 0) === (values.all === true)) throw new UsageError('--requeue moves either the rows named with --id N (repeat for more) or --all')
  if (values.limit !== undefined) throw new UsageError('--limit is for the listing; --requeue moves every row chosen')
  const code = values.reason === undefined ? undefined : reasonOf(values.reason)
  const config = await loadSiteConfig(values.config)
  const partners = config.partners.map((p) => p.id)
  const hop = values['next-hop']
  if (hop !== undefined && !partners.includes(hop)) {
    throw new DeadRowsNotFoundError(ids, `--next-hop ${hop}: the config has no such partner (it has: ${partners.join(', ') || 'none'}); nothing requeued`)
  }
  const nextHops = hop === undefined ? partners : [hop]
  const moved = requeue(join(config.stateDir, MONITORING_DB_FILE), { seqs: ids.length > 0 ? ids : undefined, nextHops, code })
  for (const row of moved) process.stdout.write(`${JSON.stringify({ requeued: row.seq, queuedAs: row.queuedAs, nextHop: row.nextHop, count: row.count })}\n`)
  process.stderr.write(`fedvm site dead-letters: ${requeuedSummary(moved, nextHops, code)}\n`)
}

/** Moves the chosen rows back in the site's monitoring.db; none when the site never stored a delivery. */
function requeue (file: string, selection: DeadRowSelection): RequeuedRow[] {
  if (!existsSync(file)) {
    if (selection.seqs !== undefined) throw new DeadRowsNotFoundError(selection.seqs)
    return []
  }
  const db = new Database(file, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS })
  try {
    return requeueDeadRows(db, selection)
  } finally {
    db.close()
  }
}

/** What the requeue did, for stderr: how many rows and deliveries, or that no dead row was chosen and which. */
function requeuedSummary (moved: readonly RequeuedRow[], nextHops: readonly string[], code: string | undefined): string {
  if (moved.length === 0) {
    return `nothing requeued: no dead row for ${nextHops.join(', ') || 'any partner'}${code === undefined ? '' : ` refused with code ${code}`}`
  }
  const deliveries = moved.reduce((n, row) => n + row.count, 0)
  return `${moved.length} row${moved.length === 1 ? '' : 's'} (${deliveries} deliver${deliveries === 1 ? 'y' : 'ies'}) moved back to the end of the queue`
}

/** The listing's lines, read-only (beside the running daemon); none when the site never stored a delivery. */
function listDeadRows (file: string, nextHop: string | undefined, limit: number): string[] {
  if (!existsSync(file)) return []
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return readDeadRows(db, { nextHop, limit }).map((row) => JSON.stringify({
      seq: row.seq,
      nextHop: row.nextHop,
      count: row.count,
      bytes: row.bytes,
      deadAt: row.deadAt === null ? null : new Date(row.deadAt).toISOString(),
      code: row.code,
      detail: row.detail,
      ids: row.ids,
      vms: row.vms,
    }))
  } finally {
    db.close()
  }
}

function seqOf (text: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new UsageError(`--id ${text}: must be a seq the listing printed (a positive integer)`)
  return Number(text)
}

function reasonOf (text: string): string {
  if (!/^\S{1,200}$/.test(text)) throw new UsageError(`--reason ${JSON.stringify(text)}: must be a refusal code the listing printed (e.g. bad-request)`)
  return text
}

function positive (flag: string, text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new UsageError(`${flag} ${text}: must be a positive integer`)
  return Number(text)
}
