import type Database from 'better-sqlite3'
import { hasTable } from '../../relay/monitoring-db'

/**
 * The last firing of each (rule, VM), kept in monitoring.db so a restart does not fire a breach a
 * second time (and start a second forced migration) within the rule's cooldown. Written only when a
 * rule fires, so it costs nothing per delivery.
 */
export class RuleFirings {
  private readonly upsert: Database.Statement

  constructor (private readonly db: Database.Database) {
    db.exec('CREATE TABLE IF NOT EXISTS "rule_firings" ("rule" TEXT NOT NULL, "vm" TEXT NOT NULL, "at" INTEGER NOT NULL, PRIMARY KEY ("rule", "vm"))')
    this.upsert = db.prepare('INSERT INTO "rule_firings" ("rule", "vm", "at") VALUES (?, ?, ?) ON CONFLICT ("rule", "vm") DO UPDATE SET "at" = excluded."at"')
  }

  /** rule → vm → data time of its last firing. */
  load (): Map<string, Map<string, number>> {
    const result = new Map<string, Map<string, number>>()
    for (const row of this.db.prepare('SELECT "rule", "vm", "at" FROM "rule_firings"').all() as Array<{ rule: string, vm: string, at: number }>) {
      let byVm = result.get(row.rule)
      if (byVm === undefined) result.set(row.rule, byVm = new Map())
      byVm.set(row.vm, row.at)
    }
    return result
  }

  record (rule: string, vm: string, at: number): void {
    this.upsert.run(rule, vm, at)
  }
}

/**
 * The newest firings, newest first: the last of each (rule, VM), which is what the table keeps. Reads
 * through any connection (also a read-only one) and is empty while no rule has ever run at the site.
 */
export function recentFirings (db: Database.Database, limit: number): Array<{ rule: string, vm: string, at: number }> {
  if (!hasTable(db, 'rule_firings')) return []
  return db.prepare('SELECT "rule", "vm", "at" FROM "rule_firings" ORDER BY "at" DESC, "rule", "vm" LIMIT ?').all(limit) as Array<{ rule: string, vm: string, at: number }>
}
