import type { MigrationProgress } from './migration-progress'

/** One migration this site runs as Controller, as `fedvm site status` lists it. */
export interface RunningMigration {
  vmId: string
  /** When the Controller took it up (ms since the epoch). */
  since: number
  /** The newest figures either end reported; null until one does, and between transfers (offers, settling). */
  progress: MigrationProgress | null
}

/**
 * The migrations this site runs as Controller right now and how far each has got, as learnt from
 * the ends with the migration-progress query (progress-watch.ts). In memory: a restart runs none.
 */
export class WatchedMigrations {
  private readonly entries = new Map<string, RunningMigration>()
  /** Controller runs per VM: one may start while another still ends (as ActiveMigrations counts them). */
  private readonly runs = new Map<string, number>()

  begin (vmId: string, now = Date.now()): void {
    this.runs.set(vmId, (this.runs.get(vmId) ?? 0) + 1)
    if (!this.entries.has(vmId)) this.entries.set(vmId, { vmId, since: now, progress: null })
  }

  has (vmId: string): boolean {
    return this.entries.has(vmId)
  }

  /** Ignored once the migration has ended: a query answered late must not bring it back. */
  report (vmId: string, progress: MigrationProgress | null): void {
    const entry = this.entries.get(vmId)
    if (entry !== undefined) entry.progress = progress
  }

  end (vmId: string): void {
    const runs = (this.runs.get(vmId) ?? 1) - 1
    if (runs > 0) {
      this.runs.set(vmId, runs)
      return
    }
    this.runs.delete(vmId)
    this.entries.delete(vmId)
  }

  list (): RunningMigration[] {
    return [...this.entries.values()].map((entry) => ({ ...entry }))
  }
}
