import { Gauge, Registry } from 'prom-client'
import type { Log } from '../log'
import { sampleAsDouble, type Delivery } from '../relay/delivery'
import type { PrimaryLatest } from './primary-latest'
import type { OpenedDelivery, SealedOpener } from './sealed-opener'

export interface PrimaryMetricsSources {
  latest: PrimaryLatest
  opener: SealedOpener
  /** `monitoring.metricsSealed`: show opened sealed values too (off by default: scrapers are often less trusted than the site). */
  includeSealed: boolean
  log: Log
}

/**
 * The primary site's own registry (never prom-client's global one), filled at scrape time:
 * `fedvm_primary_kpi{vm,metric,function}` is the newest value of each VM metric as delivered
 * (function "raw" for a raw delivery's last sample), `fedvm_primary_kpi_timestamp_seconds` its data
 * time (the delivery's `to`). Sealed deliveries show only their timestamp unless `includeSealed`.
 */
export function createPrimaryRegistry (sources: PrimaryMetricsSources): Registry {
  const registry = new Registry()
  const registers = [registry]
  new Gauge({
    name: 'fedvm_primary_kpi', help: 'Newest value of each VM metric stored at its primary site (raw: the last sample).', labelNames: ['vm', 'metric', 'function'], registers,
    async collect () {
      this.reset()
      for (const d of sources.latest.values()) {
        const value = await valueOf(d, sources)
        if (value !== undefined) this.set(labels(d), value)
      }
    },
  })
  new Gauge({
    name: 'fedvm_primary_kpi_timestamp_seconds', help: 'Data time (end of the delivery window) of the newest delivery of each VM metric, sealed ones too.', labelNames: ['vm', 'metric', 'function'], registers,
    collect () {
      this.reset()
      for (const d of sources.latest.values()) this.set(labels(d), d.to / 1000)
    },
  })
  return registry
}

function labels (d: Delivery): { vm: string, metric: string, function: string } {
  return { vm: d.vm, metric: d.metric, function: d.function ?? (d.format === 'raw' ? 'raw' : '') }
}

async function valueOf (d: Delivery, sources: PrimaryMetricsSources): Promise<number | undefined> {
  let opened: OpenedDelivery | Delivery = d
  if (d.sealed !== undefined) {
    if (!sources.includeSealed || !sources.opener.hasKey) return undefined
    try {
      opened = await sources.opener.open(d)
    } catch (err) {
      sources.log({ event: 'metrics-sealed-unreadable', id: d.id, vm: d.vm, metric: d.metric, code: (err as { code?: string }).code })
      return undefined
    }
  }
  if (opened.value !== undefined) return opened.value
  const samples = opened.samples ?? []
  const last = samples.reduce<typeof samples[number] | undefined>((a, s) => (a === undefined || s.ts >= a.ts ? s : a), undefined)
  return last === undefined ? undefined : sampleAsDouble(last.value)
}
