import type { LiveArrival } from '../../roles/arrival-progress'
import type { MigrationProgress } from '../../roles/migration-progress'
import type { SiteStatus } from '../site-status'

/**
 * A migration the page shows a bar for. Amounts are there once an end has reported them: the
 * figures of a transfer at this site, or those the Controller here learnt from the end that moves it.
 */
export interface RunningMigration {
  vmId: string
  /**
   * "controller": this site runs the Controller for it; "transfer": its data moves at this site (and nothing is
   * controlled here); "arrival": it arrives live here, counted as bytes through this site's end of the relay.
   */
  role: 'controller' | 'transfer' | 'arrival'
  /** Where the figures come from: this site, or the end of a migration the Controller here watches. */
  path?: MigrationProgress['path']
  phase: MigrationProgress['phase'] | LiveArrival['phase'] | 'waiting for figures'
  totalBytes?: number
  doneBytes?: number
  rateBytesPerSecond?: number
  etaMs?: number
  /** Live migrations: the memory pass. */
  iteration?: number
}

/**
 * Every migration running at this site, one per VM, from the site's status: a migration it runs as
 * Controller with the figures of its data moving here (fresher than what an end reports), else those
 * the Controller watches; then the transfers at this site for a Controller elsewhere; then the live
 * arrivals, whose total this site does not know (only what came through so far).
 */
export function runningMigrations (status: Pick<SiteStatus, 'migrations' | 'transfers' | 'arrivals'>): RunningMigration[] {
  const here = new Map(status.transfers.map(({ vmId, ...progress }) => [vmId, progress]))
  const result = new Map<string, RunningMigration>()
  for (const m of status.migrations) {
    const progress = here.get(m.vmId) ?? m.progress
    result.set(m.vmId, progress === null ? { vmId: m.vmId, role: 'controller', phase: 'waiting for figures' } : { vmId: m.vmId, role: 'controller', ...figures(progress) })
  }
  for (const [vmId, progress] of here) {
    if (!result.has(vmId)) result.set(vmId, { vmId, role: 'transfer', ...figures(progress) })
  }
  for (const a of status.arrivals) {
    if (!result.has(a.vmId)) result.set(a.vmId, { vmId: a.vmId, role: 'arrival', path: 'live', phase: a.phase, doneBytes: a.receivedBytes.memory + a.receivedBytes.disks, rateBytesPerSecond: a.rateBytesPerSecond })
  }
  return [...result.values()].sort((a, b) => a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0)
}

function figures (p: MigrationProgress): Omit<RunningMigration, 'vmId' | 'role'> {
  return {
    path: p.path, phase: p.phase, totalBytes: p.totalBytes, doneBytes: p.totalBytes - p.remainingBytes, rateBytesPerSecond: p.rateBytesPerSecond,
    ...(p.etaMs === undefined ? {} : { etaMs: p.etaMs }), ...(p.iteration === undefined ? {} : { iteration: p.iteration }),
  }
}
