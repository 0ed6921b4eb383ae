import { z } from 'zod'
import { withCopyRate, type CopyStart } from './copy-rate'

// Not necessarily whole: a rate or an ETA may be computed.
const amount = z.number().min(0).max(Number.MAX_SAFE_INTEGER)

/**
 * How far one migration has got, whichever path moves it: the Destination's pull for a cold transfer,
 * the Source's libvirt job for a live one. Only amounts and rates: nothing here names a host or a
 * partner's internals, so it may travel to the Controller as it is. The schema checks it where it
 * arrives from a partner and documents the status fields (`fedvm site status`, the dashboard).
 */
export const MigrationProgressSchema = z.object({
  path: z.enum(['cold', 'live']),
  /** cold: 'transfer' while files move; live: libvirt's 'disks', 'memory', 'switchover'; both end in 'done'. */
  phase: z.enum(['transfer', 'disks', 'memory', 'switchover', 'done']),
  totalBytes: amount,
  remainingBytes: amount,
  rateBytesPerSecond: amount,
  etaMs: amount.optional(),
  /** Live only: the memory pass (1 = first copy) and how fast the guest dirties pages. */
  iteration: amount.optional(),
  dirtyPagesPerSecond: amount.optional(),
  /** Wall time (ms since the epoch) of this report, on the clock of the site that made it. */
  at: amount,
})
export type MigrationProgress = z.infer<typeof MigrationProgressSchema>

/** The newest progress per VM; a migration's entry goes when it ends. A live disks copy gets its rate here (copy-rate.ts). */
export class ProgressBoard {
  private readonly entries = new Map<string, MigrationProgress>()
  private readonly copyStarts = new Map<string, CopyStart>()

  report (vmId: string, progress: MigrationProgress): void {
    const { progress: rated, start } = withCopyRate(this.copyStarts.get(vmId), progress)
    if (start === undefined) this.copyStarts.delete(vmId)
    else this.copyStarts.set(vmId, start)
    this.entries.set(vmId, rated)
  }

  get (vmId: string): MigrationProgress | undefined {
    return this.entries.get(vmId)
  }

  end (vmId: string): void {
    this.entries.delete(vmId)
    this.copyStarts.delete(vmId)
  }

  list (): Array<{ vmId: string } & MigrationProgress> {
    return [...this.entries].map(([vmId, progress]) => ({ vmId, ...progress }))
  }
}

/** Before this much has come, or this long has passed, a pull's average rate says little (a small first file in a few ms). */
const RATE_AFTER = { bytes: 1024 * 1024, ms: 1000 }

/**
 * A cold pull's figures as a progress record. The rate is the pull's average and counts only bytes
 * fetched, not those reused from an earlier attempt; none (0, no ETA) until RATE_AFTER.
 */
export function coldProgress (p: { totalBytes: number, fetchedBytes: number, reusedBytes: number }, elapsedMs: number, at: number): MigrationProgress {
  const remainingBytes = Math.max(0, p.totalBytes - p.fetchedBytes - p.reusedBytes)
  const measurable = p.fetchedBytes >= RATE_AFTER.bytes || elapsedMs >= RATE_AFTER.ms
  const rateBytesPerSecond = measurable ? Math.round(p.fetchedBytes / Math.max(0.001, elapsedMs / 1000)) : 0
  return {
    path: 'cold',
    phase: remainingBytes === 0 && p.totalBytes > 0 ? 'done' : 'transfer',
    totalBytes: p.totalBytes,
    remainingBytes,
    rateBytesPerSecond,
    ...(rateBytesPerSecond > 0 ? { etaMs: Math.round(remainingBytes / rateBytesPerSecond * 1000) } : {}),
    at,
  }
}
