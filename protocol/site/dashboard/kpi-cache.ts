import type Database from 'better-sqlite3'
import type { KpiSeries } from './kpi-series'

/**
 * Each VM's series as last computed, kept until the monitoring store changes. SQLite's
 * `data_version` changes on a connection whenever another connection commits to the file, and
 * reading it costs nothing; so a page polling every second re-reads the store only when something was
 * stored since (a busy store still costs one read per VM per poll).
 */
export class KpiCache {
  private readonly entries = new Map<string, { version: number, series: KpiSeries[] }>()

  constructor (private readonly db: Database.Database, private readonly compute: (vmId: string) => Promise<KpiSeries[]>) {}

  async series (vmId: string): Promise<KpiSeries[]> {
    const version = this.db.pragma('data_version', { simple: true }) as number
    const cached = this.entries.get(vmId)
    if (cached !== undefined && cached.version === version) return cached.series
    const series = await this.compute(vmId)
    this.entries.set(vmId, { version, series })
    return series
  }

  /** A VM the site no longer lists. */
  forget (vmId: string): void {
    this.entries.delete(vmId)
  }
}
