import type Database from 'better-sqlite3'
import { MonitoringViewError } from '../../primary/errors'
import { metricsOf, queryDeliveries } from '../../primary/primary-queries'
import { pointsOf } from '../../primary/rules/delivery-points'
import type { SealedOpener } from '../../primary/sealed-opener'

/** How many of a metric's newest deliveries a chart draws from, and at most how many points it holds. */
const DELIVERIES_PER_METRIC = 500
const POINTS_PER_SERIES = 2000

/** One chart's data: a metric read one way (`raw`, or a processed function), each point at its data time (ms). */
export interface KpiSeries {
  metric: string
  selector: string
  /** Points whose delivery was sealed, opened with this site's seal.key. */
  opened: number
  /** Deliveries not drawn: sealed ones while the dashboard does not open them, or that this site cannot open. */
  withheld: number
  points: Array<[number, number]>
}

export interface KpiSeriesOptions {
  /** Open sealed deliveries (dashboard.sealed, and only where the seal key is). */
  openSealed: boolean
  opener: SealedOpener
}

/**
 * A VM's KPI history as the monitoring store holds it, one series per metric and selector, oldest
 * point first. Sealed values are opened only when asked and only with this site's own key; a
 * delivery left sealed is counted, never shown.
 */
export async function kpiSeries (db: Database.Database, vm: string, options: KpiSeriesOptions): Promise<KpiSeries[]> {
  const series = new Map<string, KpiSeries>()
  const withheld = new Map<string, number>()
  for (const metric of metricsOf(db, vm)) {
    for (const delivery of queryDeliveries(db, { vm, metric, limit: DELIVERIES_PER_METRIC })) {
      if (delivery.sealed !== undefined && !(options.openSealed && options.opener.hasKey)) {
        withheld.set(metric, (withheld.get(metric) ?? 0) + 1)
        continue
      }
      let opened
      try {
        opened = await options.opener.open(delivery)
      } catch (err) {
        if (!(err instanceof MonitoringViewError)) throw err
        withheld.set(metric, (withheld.get(metric) ?? 0) + 1)
        continue
      }
      for (const point of pointsOf(opened)) {
        const key = `${metric}\u0000${point.selector}`
        let entry = series.get(key)
        if (entry === undefined) series.set(key, entry = { metric, selector: point.selector, opened: 0, withheld: 0, points: [] })
        entry.points.push([point.ts, point.value])
        if (point.sealed) entry.opened++
      }
    }
  }
  for (const [metric, count] of withheld) {
    const entry = [...series.values()].find((s) => s.metric === metric)
    if (entry !== undefined) entry.withheld += count
    else series.set(`${metric}\u0000sealed`, { metric, selector: 'sealed', opened: 0, withheld: count, points: [] })
  }
  // Metric then selector: the page adds charts in this order, so they keep their places across polls.
  return [...series.values()]
    .sort((a, b) => byText(a.metric, b.metric) || byText(a.selector, b.selector))
    .map((s) => ({ ...s, points: s.points.sort((a, b) => a[0] - b[0]).slice(-POINTS_PER_SERIES) }))
}

function byText (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
