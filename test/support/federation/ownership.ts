import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Federation } from '../../protocol/support/federation'

/**
 * What each site of a federation says and holds of one VM, read from outside (its state database,
 * opened read-only while the daemon runs, and its hosts' VM folders): the view the ownership
 * invariant is checked against.
 */
export interface SiteView {
  site: string
  /** The site's location record of the VM (kind:target), or none. */
  location: string | undefined
  /** Tokens the site holds in doubt for the VM (a complete arrival, or the VM held for leaving). */
  inDoubt: number
  /** Migrations of the VM whose decision has not reached both sides (the Controller's records). */
  unsettled: number
  /** Hosts whose folder holds the VM and that may run it (not held for leaving). */
  runnable: string[]
  /** Hosts holding the VM's folder held for leaving, a transfer's files in .incoming, or a live arrival's. */
  held: string[]
}

export function siteView (fed: Federation, siteId: string, vmId: string, hosts: string[]): SiteView {
  const dbFile = join(fed.site(siteId).dir, 'state', 'site.db')
  let location: string | undefined
  let inDoubt = 0
  let unsettled = 0
  if (existsSync(dbFile)) {
    const db = new Database(dbFile, { readonly: true, fileMustExist: true })
    try {
      const row = db.prepare('SELECT "kind", "target" FROM "locations" WHERE "vm_id" = ?').get(vmId) as { kind: string, target: string } | undefined
      location = row === undefined ? undefined : `${row.kind}:${row.target}`
      inDoubt = (db.prepare('SELECT count(*) AS n FROM "tokens" WHERE "vm_id" = ? AND (("role" = \'destination\' AND "state" = \'received\') OR ("role" = \'source\' AND "state" = \'open\'))').get(vmId) as { n: number }).n
      const table = db.prepare('SELECT name FROM sqlite_master WHERE type = \'table\' AND name = \'migrations\'').get()
      if (table !== undefined) unsettled = (db.prepare('SELECT count(*) AS n FROM "migrations" WHERE "vm_id" = ? AND ("destination_settled" = 0 OR "source_settled" = 0)').get(vmId) as { n: number }).n
    } finally {
      db.close()
    }
  }
  const runnable: string[] = []
  const held: string[] = []
  for (const host of hosts) {
    const dir = fed.vmDir(siteId, host)
    const leaving = existsSync(join(dir, '.leaving', vmId))
    // A live migration's arrival: its folder and incoming domain are the migration's until the commit.
    const arriving = existsSync(join(dir, '.arriving', vmId))
    if (existsSync(join(dir, vmId)) && !leaving && !arriving) runnable.push(host)
    if (leaving || arriving || existsSync(join(dir, '.incoming', vmId))) held.push(host)
  }
  return { site: siteId, location, inDoubt, unsettled, runnable, held }
}

/** Settled: no site holds anything in doubt or undelivered, and nothing is held for leaving or half-received. */
export function settled (views: SiteView[]): boolean {
  return views.every((v) => v.inDoubt === 0 && v.unsettled === 0 && v.held.length === 0)
}

export function describeViews (views: SiteView[]): string {
  return views.map((v) => `${v.site}: location=${v.location ?? '-'} inDoubt=${v.inDoubt} unsettled=${v.unsettled} runnable=[${v.runnable.join(',')}] held=[${v.held.join(',')}]`).join('; ')
}
