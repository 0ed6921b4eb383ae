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
 * The VMs this process is running the Controller for right now, and how far each has got as learnt
 * from the ends with the migration-progress query (progress-watch.ts). In memory: after a restart
 * there are none, so an undecided record found then belongs to a Controller that died and is decided
 * abort. One Controller run may start for a VM while another still ends: runs are counted, and the
 * VM stays listed until the last one leaves.
 */
export class ActiveMigrations {
  private readonly counts = new Map<string, number>()
  private readonly entries = new Map<string, RunningMigration>()

  enter (vmId: string, now = Date.now()): void {
    this.counts.set(vmId, (this.counts.get(vmId) ?? 0) + 1)
    if (!this.entries.has(vmId)) this.entries.set(vmId, { vmId, since: now, progress: null })
  }

  leave (vmId: string): void {
    const count = (this.counts.get(vmId) ?? 1) - 1
    if (count > 0) {
      this.counts.set(vmId, count)
      return
    }
    this.counts.delete(vmId)
    this.entries.delete(vmId)
  }

  has (vmId: string): boolean {
    return this.counts.has(vmId)
  }

  /** Ignored once the migration has ended: a query answered late must not bring it back. */
  report (vmId: string, progress: MigrationProgress | null): void {
    const entry = this.entries.get(vmId)
    if (entry !== undefined) entry.progress = progress
  }

  list (): RunningMigration[] {
    return [...this.entries.values()].map((entry) => ({ ...entry }))
  }
}
