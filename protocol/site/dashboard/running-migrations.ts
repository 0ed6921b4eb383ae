import type { ActiveMigrations } from '../../roles/active-migrations'
import type { IncomingTransfers } from '../../roles/incoming-transfers'
import type { ProgressBoard } from '../../roles/migration-progress'

/**
 * A migration the page shows a bar for. Amounts are known where the bytes move (this site's pull or
 * libvirt job); a migration this site only controls while a partner moves it has a phase and no amounts
 * until the partner reports them.
 */
export interface RunningMigration {
  vmId: string
  /** "controller": this site runs the Controller for it; "transfer": the VM's files or memory move at this site. */
  role: 'controller' | 'transfer'
  path?: 'cold' | 'live'
  phase: string
  totalBytes?: number
  doneBytes?: number
  rateBytesPerSecond?: number
  etaMs?: number
}

export interface MigrationSources {
  progress: ProgressBoard
  transfers: IncomingTransfers
  active: ActiveMigrations
}

/**
 * Every migration running at this site, one per VM: the progress board's record first (both paths
 * report into it), then a Destination pull that has not reported there, then the Controller's own
 * migrations of the VMs it lists (`vmIds`).
 */
export function runningMigrations (sources: MigrationSources, vmIds: readonly string[]): RunningMigration[] {
  const result = new Map<string, RunningMigration>()
  for (const p of sources.progress.list()) {
    result.set(p.vmId, {
      vmId: p.vmId, role: 'transfer', path: p.path, phase: p.phase, totalBytes: p.totalBytes, doneBytes: p.totalBytes - p.remainingBytes,
      rateBytesPerSecond: p.rateBytesPerSecond, ...(p.etaMs === undefined ? {} : { etaMs: p.etaMs }),
    })
  }
  for (const [vmId, p] of sources.transfers.progress) {
    if (result.has(vmId)) continue
    const etaMs = p.rateBytesPerSecond > 0 ? Math.round((p.total - p.bytes) / p.rateBytesPerSecond * 1000) : undefined
    result.set(vmId, { vmId, role: 'transfer', path: 'cold', phase: 'transfer', totalBytes: p.total, doneBytes: p.bytes, rateBytesPerSecond: p.rateBytesPerSecond, ...(etaMs === undefined ? {} : { etaMs }) })
  }
  for (const vmId of vmIds) {
    if (!result.has(vmId) && sources.active.has(vmId)) result.set(vmId, { vmId, role: 'controller', phase: 'running' })
  }
  return [...result.values()].sort((a, b) => a.vmId.localeCompare(b.vmId))
}
