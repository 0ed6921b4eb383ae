/**
 * The machine's dirty page cache (`Dirty:` in /proc/meminfo) sampled while a migration runs: a disk
 * copied by NBD lands in the Destination's page cache, and where its flush falls inside the
 * switchover, a downtime that grows with the disk comes with a large figure here.
 */
import { readFile } from 'node:fs/promises'

export class DirtyPages {
  private maxMiB = 0
  private lastMiB = 0
  private readonly timer: NodeJS.Timeout

  constructor (intervalMs = 50) {
    this.timer = setInterval(() => { void this.sample() }, intervalMs)
  }

  private async sample (): Promise<void> {
    const kib = Number(/^Dirty:\s+(\d+) kB/m.exec(await readFile('/proc/meminfo', 'utf8').catch(() => ''))?.[1])
    if (!Number.isFinite(kib)) return
    this.lastMiB = Math.round(kib / 1024)
    this.maxMiB = Math.max(this.maxMiB, this.lastMiB)
  }

  /** Stops sampling; the largest and the last amount seen, MiB. */
  stop (): { maxDirtyMiB: number, lastDirtyMiB: number } {
    clearInterval(this.timer)
    return { maxDirtyMiB: this.maxMiB, lastDirtyMiB: this.lastMiB }
  }
}
