import type Database from 'better-sqlite3'
import type { KpiSeries } from './kpi-series'

/**
 * Each VM's series as last computed, kept until the monitoring store changes. SQLite's
 * `data_version` changes on a connection whenever another connection commits to the file, and
 * reading it costs nothing; so a page polling every second re-reads the store only when something was
 * stored since (a busy store still costs one read per VM per poll). A change makes every entry stale
 * at once, so the cache drops them all then: it holds only VMs asked for since the last commit, and a
 * VM that left the site is gone with the next one even if nobody asks for it again.
 */
export class KpiCache {
  private version: number | undefined
  private readonly entries = new Map<string, KpiSeries[]>()

  constructor (private readonly db: Database.Database, private readonly compute: (vmId: string) => Promise<KpiSeries[]>) {}

  async series (vmId: string): Promise<KpiSeries[]> {
    const version = this.db.pragma('data_version', { simple: true }) as number
    if (version !== this.version) {
      this.entries.clear()
      this.version = version
    }
    const cached = this.entries.get(vmId)
    if (cached !== undefined) return cached
    const series = await this.compute(vmId)
    // A commit while computing: what was computed may predate it, so it is not kept.
    if (this.version === version && this.db.pragma('data_version', { simple: true }) === version) this.entries.set(vmId, series)
    return series
  }

  /** A VM the site no longer lists. */
  forget (vmId: string): void {
    this.entries.delete(vmId)
  }

  /** How many VMs' series are held (for tests and the curious). */
  get size (): number {
    return this.entries.size
  }
}
