import type Database from 'better-sqlite3'
import { recentFirings } from '../../primary/rules/rule-firings'
import type { Rule } from '../../primary/rules/rules-config'
import type { SiteStatus } from '../site-status'
import { runningMigrations, type RunningMigration } from './running-migrations'

/** How many rule firings the page lists. */
const FIRINGS_SHOWN = 20

/**
 * Where a VM is, as far as this site may know and show it: one of its own hosts, or only the partner it
 * went to (location unawareness: nothing further along), or still being placed.
 */
export type VmWhere = { kind: 'host', host: string } | { kind: 'partner', partner: string } | { kind: 'placing' }

export interface SiteOverview {
  site: string
  /** Wall time of this answer (ms). */
  at: number
  vms: Array<{ vmId: string, where: VmWhere, delegatedBy: string | null }>
  migrations: RunningMigration[]
  firings: Array<{ rule: string, vm: string, at: number, when?: string, action?: string }>
}

/** What the page's tables show: the site's status (as `fedvm site status` has it) and its rules' firings. */
export function siteOverview (status: SiteStatus, rules: readonly Rule[], db: Database.Database, now = Date.now()): SiteOverview {
  const byName = new Map(rules.map((rule) => [rule.name, rule]))
  return {
    site: status.id,
    at: now,
    vms: status.locations.map((l) => ({ vmId: l.vmId, where: whereOf(l), delegatedBy: l.upstream })),
    migrations: runningMigrations(status),
    firings: recentFirings(db, FIRINGS_SHOWN).map((f) => {
      const rule = byName.get(f.rule)
      return rule === undefined ? f : { ...f, when: rule.when.text, action: rule.action }
    }),
  }
}

function whereOf (l: SiteStatus['locations'][number]): VmWhere {
  // An intake record's target is a local folder: the page has no use for its path.
  if (l.kind === 'host') return { kind: 'host', host: l.target }
  if (l.kind === 'partner') return { kind: 'partner', partner: l.target }
  return { kind: 'placing' }
}
