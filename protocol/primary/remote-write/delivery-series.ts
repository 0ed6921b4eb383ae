import type { Log } from '../../log'
import { sampleAsDouble, type Delivery } from '../../relay/delivery'
import type { OpenedDelivery, SealedOpener } from '../sealed-opener'
import type { Series } from './write-request'

/** The series name of KPI history in Prometheus (the primary's scraped newest value is `fedvm_primary_kpi`, an agent's `fedvm_kpi`). */
export const HISTORY_METRIC = 'fedvm_kpi_history'

export interface SeriesSources {
  opener: SealedOpener
  /** `monitoring.metricsSealed`: opened sealed values go to Prometheus too (off: only unsealed ones). */
  includeSealed: boolean
  log: Log
}

/**
 * Deliveries as remote-write series `fedvm_kpi_history{vm, metric, function}`, each value at its data time:
 * a raw delivery's samples at their own `ts`, a processed value at the end of its window (`to`).
 * Sealed deliveries are left out unless `includeSealed` (and the site holds seal.key); a text value
 * (an application's sealed string) has no number to write and is left out.
 */
export async function seriesOf (deliveries: readonly Delivery[], sources: SeriesSources): Promise<Series[]> {
  const byKey = new Map<string, Series>()
  for (const d of deliveries) {
    const opened = await readable(d, sources)
    if (opened === undefined) continue
    const labels = { __name__: HISTORY_METRIC, vm: d.vm, metric: d.metric, function: d.function ?? (d.format === 'raw' ? 'raw' : '') }
    const key = JSON.stringify(labels)
    let series = byKey.get(key)
    if (series === undefined) byKey.set(key, series = { labels, samples: [] })
    if (opened.value !== undefined) series.samples.push({ value: opened.value, timestamp: d.to })
    for (const s of opened.samples ?? []) {
      const value = sampleAsDouble(s.value)
      if (value !== undefined) series.samples.push({ value, timestamp: s.ts })
    }
  }
  return [...byKey.values()].filter((s) => s.samples.length > 0)
}

async function readable (d: Delivery, sources: SeriesSources): Promise<OpenedDelivery | Delivery | undefined> {
  if (d.sealed === undefined) return d
  if (!sources.includeSealed || !sources.opener.hasKey) return undefined
  try {
    return await sources.opener.open(d)
  } catch (err) {
    sources.log({ event: 'remote-write-sealed-unreadable', id: d.id, vm: d.vm, metric: d.metric, code: (err as { code?: string }).code })
    return undefined
  }
}
