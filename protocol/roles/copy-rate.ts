/** What of a progress report the rate needs (migration-progress.ts's MigrationProgress has it). */
interface Report { path: string, phase: string, remainingBytes: number, rateBytesPerSecond: number, etaMs?: number | undefined, at: number }

/** The first report of a live disks copy: the copy's average runs from there. */
export interface CopyStart { at: number, remainingBytes: number }

/** Before this span an average says little: QEMU's mirror reports in bursts of up to 16 MiB. */
export const COPY_RATE_AFTER_MS = 2000

/**
 * A rate for a live migration's disks copy, which libvirt does not report (its disk_bps comes only
 * with QEMU's own migration, which starts after the disks): the copy's average since the first report
 * of it. That first report leaves out the mirror's first burst, which goes at once before its rate
 * limit holds the rest back; the mirror advances in irregular steps, so the figure is rough in the
 * first seconds and none is given before COPY_RATE_AFTER_MS. Pure: the board keeps `start` between
 * reports. A report that has a rate of its own, or is of another phase, passes as it is.
 */
export function withCopyRate<R extends Report> (start: CopyStart | undefined, next: R): { progress: R, start: CopyStart | undefined } {
  if (next.path !== 'live' || next.phase !== 'disks' || next.rateBytesPerSecond > 0) return { progress: next, start: undefined }
  if (start === undefined) return { progress: next, start: { at: next.at, remainingBytes: next.remainingBytes } }
  const spanMs = next.at - start.at
  const copied = start.remainingBytes - next.remainingBytes
  if (spanMs < COPY_RATE_AFTER_MS || copied <= 0) return { progress: next, start }
  const rate = Math.round(copied / (spanMs / 1000))
  return { progress: { ...next, rateBytesPerSecond: rate, etaMs: Math.round(next.remainingBytes / rate * 1000) }, start }
}
