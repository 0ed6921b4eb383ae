/**
 * One metric family whose values are produced at scrape time by the collectors. It has the shape
 * prom-client's Registry reads (name, help, type, aggregator, get(), reset()), so the agent's
 * registry serves it like any built-in metric; `get()` and `text()` wait for the scrape shared by
 * all families.
 */
import type { MetricFamily, Sample } from '../../host/collector'
import { familyText } from './family-text'

/** A series as prom-client's get() shows it (getMetricsAsJSON); the labels object is the sample's own. */
export interface FamilyValue { labels: Record<string, string>, value: number }

export interface PromMetricObject {
  name: string
  help: string
  type: 'counter' | 'gauge'
  aggregator: 'sum'
  values: FamilyValue[]
}

export class ScrapeFamily {
  readonly help: string
  readonly type: 'counter' | 'gauge'
  readonly aggregator = 'sum' as const

  /** `name` is writable because prom-client renames counters (drops `_total`) for OpenMetrics. */
  constructor (public name: string, family: MetricFamily, private readonly samples: () => Promise<readonly Sample[]>) {
    this.help = family.help
    this.type = family.type
  }

  async get (): Promise<PromMetricObject> {
    const values = (await this.samples()).map(s => ({ labels: s.labels, value: s.value }))
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** This family in the text exposition format, as the registry would format get()'s result. */
  async text (openMetrics: boolean): Promise<string> {
    return familyText(this, await this.samples(), openMetrics)
  }

  reset (): void {}
}
