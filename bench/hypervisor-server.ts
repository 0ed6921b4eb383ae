/**
 * For bench/hypervisor-scrape: serves the libvirt collector on /metrics through the agent's own
 * registry code, read either at scrape time (what the agent does) or, as collectd does, on an
 * interval into a cache that the scrape serves (with the data's age exported), so both designs
 * run as separate processes whose CPU the bench can measure.
 *
 *   node dist/bench/hypervisor-server.js --socket SOCK --port PORT --mode scrape|cache [--interval-ms 10000] [--concurrency 4] [--kept none|balloon|balloon,vcpu]
 */
import { Registry } from 'prom-client'
import { registerCollectors } from '../agent/collect'
import { startMetricsServer } from '../agent/outputs/metrics-server'
import type { Collector, MetricFamily, Sample } from '../host/collector'
import type { StatsGroup } from '../host/hypervisor'
import { LibvirtCollector } from '../host/libvirt/libvirt-collector'
import { LibvirtHypervisor } from '../host/libvirt/libvirt-hypervisor'

const AGE: MetricFamily = { name: 'fedvm_collector_data_age_seconds', type: 'gauge', help: 'Age of the cached collection this scrape serves, in seconds.' }

/** collectd's design: read every `intervalMs`, whether or not anyone scrapes; a scrape serves the last read. */
class IntervalCache implements Collector {
  readonly name: string
  readonly families: readonly MetricFamily[]
  private last: { samples: Sample[], at: number } = { samples: [], at: Date.now() }
  private readonly timer: NodeJS.Timeout

  constructor (private readonly inner: Collector, intervalMs: number) {
    this.name = inner.name
    this.families = [...(inner.families ?? []), AGE]
    const read = async (): Promise<void> => {
      const samples = await inner.collect(AbortSignal.timeout(intervalMs)).catch(() => this.last.samples)
      this.last = { samples, at: Date.now() }
    }
    void read()
    this.timer = setInterval(() => void read(), intervalMs)
  }

  async collect (): Promise<Sample[]> {
    return [...this.last.samples, { ...AGE, labels: { collector: this.inner.name }, value: (Date.now() - this.last.at) / 1000 }]
  }

  stop (): void { clearInterval(this.timer) }
}

function arg (name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`)
  const value = i > 0 ? process.argv[i + 1] : fallback
  if (value === undefined) throw new Error(`--${name} is required`)
  return value
}

async function main (): Promise<void> {
  const mode = arg('mode', 'scrape')
  if (mode !== 'scrape' && mode !== 'cache') throw new Error(`--mode must be scrape or cache, got ${mode}`)
  const hypervisor = new LibvirtHypervisor({ socketPath: arg('socket') })
  // --kept none|balloon|balloon,vcpu: the groups kept between scrapes (the collector's default when absent).
  const kept = process.argv.includes('--kept') ? arg('kept').split(',').filter(g => g !== 'none') as StatsGroup[] : undefined
  const collector = new LibvirtCollector({ hypervisor, concurrency: Number(arg('concurrency', '4')), ...(kept === undefined ? {} : { keptGroups: kept }) })
  const registry = new Registry()
  registerCollectors(registry, [mode === 'cache' ? new IntervalCache(collector, Number(arg('interval-ms', '10000'))) : collector])
  await startMetricsServer(registry, '127.0.0.1', Number(arg('port')))
  console.log('ready')
}

main().catch(err => { console.error(err); process.exit(1) })
