import { dataPointGroups, domainDataPoints } from '../../host/data-points'
import type { DomainRef, Hypervisor } from '../../host/hypervisor'
import type { AgentStore } from '../state/agent-store'
import { isStorageError } from '../state/storage-health'
import type { VmMonitor } from './vm-monitor'

/**
 * Reads hypervisor data points (`cpu.time`, `balloon.rss`, …) for the specifier engine: one bulk
 * call per poll for all domains, each VM's needed points handed to its monitor in one transaction.
 * Specifiers with a monitoring interval sample the latest reading at their own pace.
 */
export class DataPointPoller {
  private timer?: NodeJS.Timeout
  private polling = false
  private failing = false
  /** Domain references by name, so a poll asks only for the domains it needs (a hung other domain cannot hold it up). */
  private refs = new Map<string, DomainRef>()
  private refsReadAt = 0

  constructor (
    private readonly hypervisor: Hypervisor,
    private readonly store: AgentStore,
    private readonly monitors: () => Iterable<{ domain: string, monitor: VmMonitor }>,
    private readonly intervalMs: number,
    private readonly log: (line: string) => void,
  ) {}

  start (): void {
    this.timer = setInterval(() => void this.poll(), this.intervalMs)
  }

  stop (): void {
    clearInterval(this.timer)
  }

  async poll (): Promise<void> {
    const wanted = [...this.monitors()].filter(({ monitor }) => monitor.dataPointsWanted().size > 0)
    if (wanted.length === 0 || this.polling) return
    this.polling = true
    try {
      const signal = AbortSignal.timeout(this.intervalMs * 4)
      const domains = await this.domainRefs(wanted.map((w) => w.domain), signal)
      if (domains.length === 0) return
      // Only the groups the wanted points come from: libvirt asks QEMU's monitor for most groups.
      const groups = dataPointGroups(wanted.flatMap(({ monitor }) => [...monitor.dataPointsWanted()]))
      const stats = await this.hypervisor.getDomainStats({ domains, groups, signal })
      const ts = Date.now()
      const byName = new Map(stats.map((domain) => [domain.name, domain]))
      this.store.transaction(() => {
        for (const { domain, monitor } of wanted) {
          const found = byName.get(domain)
          if (!found) continue
          const points = domainDataPoints(found)
          for (const name of monitor.dataPointsWanted()) {
            const value = points.get(name)
            if (value !== undefined) monitor.ingestDataPoint(name, { ts, value })
          }
        }
      }, 'datapoints')
      this.failing = false
    } catch (err) {
      // The store refused (counted and logged there): this poll's readings are dropped, the next poll reads again.
      if (isStorageError(err)) return
      if (!this.failing) this.log(`data points: hypervisor read failed (logged once until it works again): ${(err as Error).message}`)
      this.failing = true
      this.refsReadAt = 0
    } finally {
      this.polling = false
    }
  }

  /** The references of the named domains; the list is re-read when one is unknown, at most every 10 s. */
  private async domainRefs (names: string[], signal: AbortSignal): Promise<DomainRef[]> {
    if (names.some((name) => !this.refs.has(name)) && Date.now() - this.refsReadAt > 10_000) {
      this.refs = new Map((await this.hypervisor.listDomains(signal)).map((ref) => [ref.name, ref]))
      this.refsReadAt = Date.now()
    }
    return names.flatMap((name) => this.refs.get(name) ?? [])
  }
}
