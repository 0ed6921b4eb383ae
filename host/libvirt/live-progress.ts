/**
 * A running live migration's progress from libvirt's job statistics (virDomainGetJobStats), in the
 * terms `virsh migrate --verbose` and `virsh domjobinfo` use. Pure: tested on recorded statistics.
 */
import type { TypedParams } from './rpc/migration-params'

export interface LiveProgress {
  phase: 'disks' | 'memory' | 'switchover' | 'done'
  /** Bytes of disks + memory still to send, of the total libvirt counts. */
  remainingBytes: number
  totalBytes: number
  rateBytesPerSecond: number
  /** Memory pass (1 = the first copy; each later one re-sends pages the guest dirtied meanwhile). */
  iteration: number
  dirtyPagesPerSecond: number
  etaMs: number | undefined
  elapsedMs: number
}

function num (stats: TypedParams, key: string): number {
  const v = stats[key]
  return typeof v === 'number' ? v : 0
}

/**
 * `memoryBytes`, the guest's memory as the offer gave it, counts the memory in from the start: while
 * the disks copy, libvirt's totals leave it out (QEMU's RAM migration has not begun), so the figures
 * would jump back (99 % of the disks, then about half once the memory is counted).
 */
export function liveProgress (stats: TypedParams, completed = false, memoryBytes = 0): LiveProgress {
  const diskRemaining = num(stats, 'disk_remaining')
  const memoryRemaining = num(stats, 'memory_remaining')
  const iteration = num(stats, 'memory_iteration')
  const rate = num(stats, 'memory_bps') + num(stats, 'disk_bps')
  const memoryUncounted = num(stats, 'memory_total') === 0 ? memoryBytes : 0
  const remaining = (num(stats, 'data_remaining') || diskRemaining + memoryRemaining) + memoryUncounted
  const phase = completed ? 'done' : iteration === 0 && num(stats, 'memory_processed') === 0 ? 'disks' : num(stats, 'memory_remaining') === 0 && iteration > 0 ? 'switchover' : 'memory'
  return {
    phase,
    remainingBytes: completed ? 0 : remaining,
    totalBytes: (num(stats, 'data_total') || num(stats, 'disk_total') + num(stats, 'memory_total')) + memoryUncounted,
    rateBytesPerSecond: rate,
    iteration,
    dirtyPagesPerSecond: num(stats, 'memory_dirty_rate'),
    etaMs: completed ? 0 : rate > 0 ? Math.round(remaining / rate * 1000) : undefined,
    elapsedMs: num(stats, 'time_elapsed')
  }
}

/** The figures a progress line shows: a live job's, or a cold transfer's (which has no memory pass). */
export interface ProgressFigures {
  phase: string
  remainingBytes: number
  totalBytes: number
  rateBytesPerSecond: number
  etaMs?: number | undefined
  iteration?: number | undefined
  dirtyPagesPerSecond?: number | undefined
}

/** One line like `virsh migrate --verbose`'s, with what a live migration adds (its memory pass and dirty rate). */
export function progressLine (p: ProgressFigures): string {
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`
  const done = p.totalBytes > 0 ? Math.floor((p.totalBytes - p.remainingBytes) / p.totalBytes * 100) : 0
  const eta = p.etaMs === undefined ? '?' : `${Math.ceil(p.etaMs / 1000)} s`
  const live = p.iteration === undefined ? '' : `, pass ${p.iteration}, dirty ${p.dirtyPagesPerSecond ?? 0} pages/s`
  return `Migration: [${String(done).padStart(3)} %] ${p.phase}, ${mib(p.remainingBytes)} of ${mib(p.totalBytes)} left, ${mib(p.rateBytesPerSecond)}/s, ETA ${eta}${live}`
}
