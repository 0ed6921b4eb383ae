import type { RowFrame, StatsFrame } from '../../protocol/kpi-feed/frames'
import type { ProcessingFunction } from '../../protocol/descriptor/specifier-schema'

export interface KpiState {
  writes: number
  lastWriteMs: number
  /** Latest numeric value per column; empty for an encrypted KPI. */
  values: Map<string, number>
  encrypted: boolean
}

/** What /metrics shows of one VM's KPIs: read at scrape time, never pushed. */
export class KpiView {
  readonly kpis = new Map<string, KpiState>()
  readonly processed = new Map<string, { metric: string, fn: ProcessingFunction, value: number }>()
  guest: { committed: number, refused: number } = { committed: 0, refused: 0 }
  feedConnected = false
  /** The last row recorded; moved back when the feed's cursor does (a new guest database starts at 1). */
  private lastSeq = 0n
  /** Table and column (joined by NUL: names may hold dots) of KPIs whose specifiers ask for encryption: their values stay off /metrics. */
  private hidden = new Set<string>()

  setHidden (columns: Array<[table: string, column: string]>): void {
    this.hidden = new Set(columns.map(([table, column]) => hiddenKey(table, column)))
    for (const [table, state] of this.kpis) {
      for (const column of state.values.keys()) if (this.hidden.has(hiddenKey(table, column))) state.values.delete(column)
    }
  }

  /** Records a row once: rows at or below the last one recorded (seen on arrival, or sent again after a failed store) are skipped. */
  record (row: RowFrame): void {
    const seq = BigInt(row.seq)
    if (seq <= this.lastSeq) return
    this.lastSeq = seq
    let state = this.kpis.get(row.kpi)
    if (!state) {
      state = { writes: 0, lastWriteMs: 0, values: new Map(), encrypted: row.sealed !== undefined }
      this.kpis.set(row.kpi, state)
    }
    state.writes++
    state.lastWriteMs = row.ts
    if (!row.cols || !row.vals) return
    for (let i = 0; i < row.cols.length; i++) {
      const value = row.vals[i]
      if ((typeof value === 'number' || typeof value === 'bigint') && !this.hidden.has(hiddenKey(row.kpi, row.cols[i]))) state.values.set(row.cols[i], Number(value))
    }
  }

  /** The feed continues after `seq` (a replaced or migrated guest database): rows after it are new again. */
  restartAfter (seq: bigint): void {
    this.lastSeq = seq
  }

  recordProcessed (metric: string, fn: ProcessingFunction, value: number): void {
    this.processed.set(`${metric}\u0000${fn}`, { metric, fn, value })
  }

  recordStats (stats: StatsFrame): void {
    this.guest = { committed: stats.committed, refused: stats.refused }
  }
}

function hiddenKey (table: string, column: string): string {
  return `${table}\u0000${column}`
}
