import type Database from 'better-sqlite3'
import { MonitoringViewError } from '../../primary/errors'
import { metricsOf, queryDeliveries } from '../../primary/primary-queries'
import { pointsOf } from '../../primary/rules/delivery-points'
import type { OpenedDelivery, SealedOpener } from '../../primary/sealed-opener'

/** How many of a metric's newest deliveries a chart draws from, and at most how many points it holds. */
const DELIVERIES_PER_METRIC = 500
const POINTS_PER_SERIES = 2000
/** raw and the four processed functions. */
const SELECTORS_PER_METRIC = 5

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
  const series = new Map<string, { metric: string, selector: string, points: Array<{ ts: number, value: number, sealed: boolean }> }>()
  const withheld = new Map<string, number>()
  for (const metric of metricsOf(db, vm)) {
    let read = 0
    // Newest first, and no further once the metric's charts are full: a raw delivery may carry thousands of samples.
    for (const delivery of queryDeliveries(db, { vm, metric, limit: DELIVERIES_PER_METRIC }).reverse()) {
      if (read >= POINTS_PER_SERIES * SELECTORS_PER_METRIC) break
      let opened: OpenedDelivery
      if (delivery.sealed === undefined) {
        opened = { ...delivery, wasSealed: false } // no await per delivery: most are not sealed, and a poll reads thousands
      } else if (!(options.openSealed && options.opener.hasKey)) {
        withheld.set(metric, (withheld.get(metric) ?? 0) + 1)
        continue
      } else {
        try {
          opened = await options.opener.open(delivery)
        } catch (err) {
          if (!(err instanceof MonitoringViewError)) throw err
          withheld.set(metric, (withheld.get(metric) ?? 0) + 1)
          continue
        }
      }
      for (const point of pointsOf(opened)) {
        const key = `${metric}\u0000${point.selector}`
        let entry = series.get(key)
        if (entry === undefined) series.set(key, entry = { metric, selector: point.selector, points: [] })
        entry.points.push({ ts: point.ts, value: point.value, sealed: point.sealed })
        read++
      }
    }
  }
  const result: KpiSeries[] = [...series.values()].map(({ metric, selector, points }) => {
    const shown = points.sort((a, b) => a.ts - b.ts).slice(-POINTS_PER_SERIES)
    return { metric, selector, opened: shown.filter((p) => p.sealed).length, withheld: 0, points: shown.map((p): [number, number] => [p.ts, p.value]) }
  })
  for (const [metric, count] of withheld) {
    const entry = result.find((s) => s.metric === metric)
    if (entry !== undefined) entry.withheld += count
    else result.push({ metric, selector: 'sealed', opened: 0, withheld: count, points: [] })
  }
  // Metric then selector: the page adds charts in this order, so they keep their places across polls.
  return result.sort((a, b) => byText(a.metric, b.metric) || byText(a.selector, b.selector))
}

function byText (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
