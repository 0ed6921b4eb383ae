/**
 * Plugs Collectors into a prom-client Registry (the agent's own, never the global one): every
 * scrape of the registry runs all collectors once (shared by all families of that scrape), each
 * timed and bounded by a deadline, and exports fedvm_collector_duration_seconds{collector} and
 * fedvm_collector_success{collector}. A failing collector is logged and leaves only its own
 * series out; the scrape itself never fails because of it.
 */
import type { Registry } from 'prom-client'
import type { Collector, MetricFamily, Sample } from '../../host/collector'
import { formatScrapeFamiliesDirectly } from './registry-text'
import { runCollectors, type CollectorOutcome } from './run-collectors'
import { ScrapeFamily } from './scrape-family'

export interface RegisterOptions {
  /** Per-collector deadline of one scrape, ms. Default 8000 (keep it under the scraper's timeout, Prometheus' default is 10 s). */
  deadlineMs?: number
  /** Where failures go. Default: console.error. */
  log?: (message: string) => void
}

const DURATION: MetricFamily = { name: 'fedvm_collector_duration_seconds', type: 'gauge', help: 'Time the collector took in the last scrape, in seconds.' }
const SUCCESS: MetricFamily = { name: 'fedvm_collector_success', type: 'gauge', help: 'Whether the collector succeeded in the last scrape (1) or failed or missed its deadline (0).' }

export interface RegisteredCollectors {
  /** Runs the collectors once outside a scrape (nothing is exported): for benchmarks and diagnostics. */
  collectOnce: () => Promise<CollectorOutcome[]>
}

export function registerCollectors (registry: Registry, collectors: readonly Collector[], options: RegisterOptions = {}): RegisteredCollectors {
  const deadlineMs = options.deadlineMs ?? 8000
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) throw new RangeError(`deadlineMs must be a positive number of milliseconds, got ${String(options.deadlineMs)}`)
  const names = new Set<string>()
  for (const c of collectors) {
    if (names.has(c.name)) throw new RangeError(`two collectors are named ${JSON.stringify(c.name)}`)
    names.add(c.name)
  }
  const log = options.log ?? ((m: string) => console.error(m))
  const busy = new Set<string>()
  const families = new Map<string, ScrapeFamily>()
  let current: Promise<Map<string, Sample[]>> | undefined

  const scrapeValues = async (): Promise<Map<string, Sample[]>> => {
    current ??= runCollectors(collectors, { deadlineMs, busy })
      .then(outcomes => toFamilyValues(outcomes))
      .finally(() => { current = undefined })
    return await current
  }

  /** The samples of one scrape by family name (each sample object is exported as it came). */
  const toFamilyValues = (outcomes: CollectorOutcome[]): Map<string, Sample[]> => {
    const byName = new Map<string, Sample[]>([[DURATION.name, []], [SUCCESS.name, []]])
    for (const o of outcomes) {
      const labels = { collector: o.collector }
      byName.get(DURATION.name)?.push({ ...DURATION, labels, value: o.durationSeconds })
      byName.get(SUCCESS.name)?.push({ ...SUCCESS, labels, value: o.success ? 1 : 0 })
      if (o.error !== undefined) log(`collect: ${o.error.message} [${o.error.code}]`)
      for (const s of o.samples) {
        let list = byName.get(s.name)
        if (list === undefined) {
          list = []
          byName.set(s.name, list)
          if (!families.has(s.name)) addFamily({ name: s.name, help: s.help, type: s.type })
        }
        list.push(s)
      }
    }
    return byName
  }

  const addFamily = (family: MetricFamily): void => {
    if (families.has(family.name)) return
    const metric = new ScrapeFamily(family.name, family, async () => (await scrapeValues()).get(family.name) ?? [])
    try {
      // The registry only reads name/help/type/aggregator/get()/reset() (prom-client 15): the one cast is here.
      registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0])
      families.set(family.name, metric)
    } catch (err) {
      log(`collect: cannot export ${family.name}: ${(err as Error).message}`)
    }
  }

  formatScrapeFamiliesDirectly(registry)
  addFamily(DURATION)
  addFamily(SUCCESS)
  for (const c of collectors) for (const f of c.families ?? []) addFamily(f)

  return {
    collectOnce: async () => await runCollectors(collectors, { deadlineMs, busy })
  }
}
