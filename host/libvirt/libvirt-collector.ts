/**
 * The libvirt Collector: libvirt's bulk statistics (virConnectGetAllDomainStats) read at scrape time,
 * turned into libvirt_domain_* samples, plus libvirt_up.
 *
 * libvirtd answers one bulk call by walking its domains in turn, waiting for each domain's QEMU
 * monitor (libvirt 9.0 sends 8 QMP commands per domain for the groups exported here: cpu 1,
 * balloon 2, vcpu 2, block 3), so a call's wall time is the sum over the domains. The collector lists the domains and splits them into up to `concurrency`
 * bulk calls sent at once on the one connection: libvirtd runs each in its own worker thread and
 * the QEMUs answer in parallel, so the scrape takes about the slowest part instead of the sum.
 *
 * What a group costs decides when it is read (bench/hypervisor-groups measures it: libvirt 9.0, 30
 * domains, QMP commands per domain): state and interface none; cpu 1 (query-stats, for the halt-poll
 * times, which fedvm does not export; cpu.time itself comes from the cgroup); block 3; balloon 2
 * (query-balloon, qom-get of the guest's statistics); vcpu 2 (query-stats-schemas, query-stats).
 * The groups whose counters move between scrapes (cpu, block, interface) are read at every scrape.
 * The `kept` groups (default balloon and vcpu) are read with them only once the kept copy is older than
 * `keptMaxAgeMs` (or a domain has none): the guest refreshes its balloon statistics once per
 * statistics period (<memballoon><stats period>, usually 5-10 s, never without one), and the
 * balloon size and maximum change only when someone sets them, so reading them every scrape costs
 * two QMP round trips per domain for values that have not moved; the host-side rss in that group
 * is up to keptMaxAgeMs old. The vcpu group's two QMP commands fetch KVM statistics (none under
 * TCG) that fedvm does not export: with vcpu kept, each vCPU's state and time are still read at every
 * scrape, through virDomainGetVcpus (one RPC per domain, answered from /proc without QMP, sent
 * alongside the bulk calls); the vCPU count and each vCPU's wait and delay (schedstat, only in the
 * group) are as old as the kept copy.
 *
 * Read at scrape time, as Prometheus advises, not on an interval into a cache as collectd does
 * (bench/hypervisor-scrape measures both): a cache keeps a scrape's wall time flat (~10 ms at 30
 * domains) but costs the same libvirtd and QEMU work per interval while nobody scrapes (~1.3 s of
 * CPU a minute at 30 domains every 10 s), and its values are up to an interval older than the
 * scrape that Prometheus stamps them with, which skews rate() over counters by up to interval/window.
 *
 * One stuck domain must not stall the others. Each bulk call gets a deadline (`statsTimeoutMs`).
 * When one misses it, the domains of that call whose control channel is busy
 * (virDomainGetControlInfo: occupied, job or error) are the suspects: they are marked stuck,
 * reported as libvirt_domain_timed_out 1 with no other series, and left out of later bulk calls
 * until their control channel is `ok` again. The other domains of that call are read again in the
 * same collection; the other calls' answers are kept.
 *
 * Inactive (defined, shut off) domains export only libvirt_domain_info_state, so stopping a
 * domain removes its usage series and a domain that is undefined disappears entirely.
 */
import { setMaxListeners } from 'node:events'
import type { Collector, Sample } from '../collector'
import { HypervisorError } from '../errors'
import { STATS_GROUPS, type DomainRef, type DomainStats, type Hypervisor, type StatsGroup } from '../hypervisor'
import { domainSamples, F, LIBVIRT_FAMILIES } from './domain-samples'

export interface LibvirtCollectorOptions {
  hypervisor: Hypervisor
  /**
   * Deadline of one bulk statistics call, ms. Default 4000; keep it below the core's deadline.
   * libvirt asks each QEMU in turn: 50 domains on a loaded 2-core TCG host took ~1.8 s in one call.
   */
  statsTimeoutMs?: number
  /**
   * Bulk calls in flight at once, each for a share of the domains. Default 4: libvirtd serves 5
   * calls per client at once (max_client_requests), and one is left for other callers.
   */
  concurrency?: number
  /**
   * Groups kept between scrapes, read again once older than keptMaxAgeMs. Default ['balloon', 'vcpu'];
   * [] reads every group at every scrape. `state` is always read.
   */
  keptGroups?: readonly StatsGroup[]
  /** Default 30000: within one or two Prometheus scrape intervals, several balloon statistics periods. */
  keptMaxAgeMs?: number
  /** Monotonic clock, ms (tests drive it). */
  now?: () => number
  log?: (message: string) => void
}

/** What a domain's kept groups said when last read. */
type KeptStats = Pick<DomainStats, 'balloon' | 'vcpu'>
const KEPT_CAPABLE: readonly StatsGroup[] = ['balloon', 'vcpu']

const SHUTOFF = 5
/** Fewer active domains than this per call are not worth another call. */
const MIN_DOMAINS_PER_CALL = 2

export class LibvirtCollector implements Collector {
  readonly name = 'libvirt'
  readonly families = LIBVIRT_FAMILIES
  private readonly hypervisor: Hypervisor
  private readonly statsTimeoutMs: number
  private readonly concurrency: number
  private readonly log: (message: string) => void
  /** Domains that missed a deadline, by uuid; left out of bulk calls until they recover. */
  private readonly stuck = new Map<string, DomainRef>()
  private readonly keptGroups: readonly StatsGroup[]
  private readonly keptMaxAgeMs: number
  private readonly now: () => number
  /** The kept groups of each active domain, by uuid, as of keptAt. */
  private kept = new Map<string, KeptStats>()
  private keptAt = Number.NEGATIVE_INFINITY

  constructor (options: LibvirtCollectorOptions) {
    this.hypervisor = options.hypervisor
    this.statsTimeoutMs = options.statsTimeoutMs ?? 4000
    this.concurrency = options.concurrency ?? 4
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${String(options.concurrency)}`)
    this.log = options.log ?? (() => {})
    this.keptGroups = options.keptGroups ?? ['balloon', 'vcpu']
    for (const g of this.keptGroups) if (!KEPT_CAPABLE.includes(g)) throw new RangeError(`keptGroups may hold ${KEPT_CAPABLE.join(', ')}, got ${String(g)}`)
    this.keptMaxAgeMs = options.keptMaxAgeMs ?? 30_000
    if (!(this.keptMaxAgeMs >= 0)) throw new RangeError(`keptMaxAgeMs must be a number of milliseconds >= 0, got ${String(options.keptMaxAgeMs)}`)
    this.now = options.now ?? (() => performance.now())
  }

  async collect (signal: AbortSignal): Promise<Sample[]> {
    let stats: DomainStats[]
    try {
      stats = await this.read(signal)
    } catch (err) {
      if (signal.aborted) throw err
      this.log(`libvirt collection failed: ${(err as Error).message}`)
      return [sample(F.up, {}, 0)]
    }
    const out: Sample[] = [sample(F.up, {}, 1)]
    for (const d of stats) {
      if (d.state.code === SHUTOFF) out.push(sample(F.state, { domain: d.name, uuid: d.uuid }, d.state.code))
      else domainSamples(d, out)
    }
    for (const d of this.stuck.values()) out.push(sample(F.timedOut, { domain: d.name, uuid: d.uuid }, 1))
    return out
  }

  private async read (signal: AbortSignal): Promise<DomainStats[]> {
    if (this.stuck.size > 0) await this.recheckStuck(signal)
    const now = this.now()
    // One call for every domain needs no list first (unless kept groups need to know who is new).
    const listed = this.concurrency === 1 && this.stuck.size === 0 && this.keptGroups.length === 0
      ? undefined
      : (await this.listBounded(signal)).filter(d => !this.stuck.has(d.uuid))
    const refresh = this.keptGroups.length > 0 && (now - this.keptAt >= this.keptMaxAgeMs || (listed ?? []).some(d => d.id >= 0 && !this.kept.has(d.uuid)))
    const groups = refresh || this.keptGroups.length === 0 ? undefined : STATS_GROUPS.filter(g => !this.keptGroups.includes(g))
    // With vcpu kept, each vCPU's state and time are asked for alongside the bulk calls (no QMP: they overlap them).
    const vcpusNow = groups !== undefined && this.keptGroups.includes('vcpu') ? this.readVcpus(listed ?? [], signal) : undefined
    const stats = await this.readGroups(listed, groups, signal)
    if (refresh) {
      this.kept = new Map(stats.filter(d => d.state.code !== SHUTOFF).map(d => [d.uuid, { balloon: d.balloon, vcpu: d.vcpu }]))
      this.keptAt = now
    } else if (groups !== undefined) {
      for (const d of stats) {
        const kept = this.kept.get(d.uuid)
        if (kept === undefined) continue
        if (d.state.code === SHUTOFF) this.kept.delete(d.uuid)
        else {
          if (this.keptGroups.includes('balloon')) d.balloon = kept.balloon
          if (this.keptGroups.includes('vcpu')) d.vcpu = kept.vcpu
        }
      }
      if (vcpusNow !== undefined) withFreshVcpus(stats, await vcpusNow)
    }
    return stats
  }

  /**
   * Each kept running domain's vCPU state and time now (virDomainGetVcpus, no QMP), by uuid; a
   * domain whose answer fails is left out (it keeps the kept values).
   */
  private async readVcpus (listed: DomainRef[], signal: AbortSignal): Promise<Map<string, FreshVcpus>> {
    const out = new Map<string, FreshVcpus>()
    const getVcpus = this.hypervisor.getVcpus?.bind(this.hypervisor)
    if (getVcpus === undefined) return out
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      await Promise.all(listed.map(async ref => {
        const kept = this.kept.get(ref.uuid)?.vcpu
        if (ref.id < 0 || kept === undefined) return
        try {
          out.set(ref.uuid, new Map((await getVcpus(ref, kept.maximum, bounded.signal)).map(v => [v.index, v])))
        } catch (err) {
          if (signal.aborted) throw err
        }
      }))
    } finally {
      bounded.dispose()
    }
    return out
  }

  /** The domains (`listed`, or all) in up to `concurrency` bulk calls at once, each bounded; a stuck domain is found and left out. */
  private async readGroups (listed: DomainRef[] | undefined, groups: readonly StatsGroup[] | undefined, signal: AbortSignal): Promise<DomainStats[]> {
    const parts = listed === undefined ? [undefined] : split(listed, this.concurrency)
    const answers = await Promise.allSettled(parts.map(async part => await this.bulk(part, groups, signal)))
    const out: DomainStats[] = []
    const late: DomainRef[] = []
    for (const [i, answer] of answers.entries()) {
      if (answer.status === 'fulfilled') out.push(...answer.value)
      else if (!signal.aborted && isTimeout(answer.reason)) late.push(...(parts[i] ?? await this.listBounded(signal)))
      else throw answer.reason
    }
    if (late.length === 0) return out
    const found = await this.findStuck(late, signal)
    if (found === 0) throw new HypervisorError('TIMEOUT', `libvirt bulk statistics took over ${this.statsTimeoutMs} ms and no domain's monitor is busy`)
    const rest = late.filter(d => !this.stuck.has(d.uuid))
    if (rest.length > 0) out.push(...await this.bulk(rest, groups, signal))
    return out
  }

  private async listBounded (signal: AbortSignal): Promise<DomainRef[]> {
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      return await this.hypervisor.listDomains(bounded.signal)
    } finally {
      bounded.dispose()
    }
  }

  /** One bulk call (all domains when `domains` is undefined; every group when `groups` is), bounded by statsTimeoutMs. */
  private async bulk (domains: DomainRef[] | undefined, groups: readonly StatsGroup[] | undefined, signal: AbortSignal): Promise<DomainStats[]> {
    if (domains?.length === 0) return []
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      return await this.hypervisor.getDomainStats({ domains, groups, signal: bounded.signal })
    } catch (err) {
      throw bounded.timedOut() ? new HypervisorError('TIMEOUT', `libvirt bulk statistics did not answer within ${this.statsTimeoutMs} ms`, { cause: err }) : err
    } finally {
      bounded.dispose()
    }
  }

  /** After a missed deadline: the active candidates whose control channel is not `ok` are stuck. */
  private async findStuck (candidates: DomainRef[], signal: AbortSignal): Promise<number> {
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      const active = candidates.filter(d => d.id >= 0 && !this.stuck.has(d.uuid))
      const details = await Promise.allSettled(active.map(d => this.hypervisor.getDomainDetails(d.uuid, bounded.signal)))
      let found = 0
      details.forEach((r, i) => {
        // A domain libvirt is querying right now is busy for a few ms only; the stuck one for about our deadline.
        if (r.status === 'fulfilled' && (r.value.control.state === 'ok' || r.value.control.sinceMs < this.statsTimeoutMs / 2)) return
        if (r.status === 'rejected' && (r.reason as HypervisorError).code === 'DOMAIN_NOT_FOUND') return
        this.stuck.set(active[i].uuid, active[i])
        this.log(`libvirt domain ${active[i].name} (${active[i].uuid}) is stuck: ${r.status === 'fulfilled' ? `control ${r.value.control.state} for ${r.value.control.sinceMs} ms` : (r.reason as Error).message}`)
        found++
      })
      return found
    } finally {
      bounded.dispose()
    }
  }

  /** A stuck domain comes back once its control channel is `ok`; a vanished one is forgotten. */
  private async recheckStuck (signal: AbortSignal): Promise<void> {
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      await Promise.all([...this.stuck.values()].map(async d => {
        try {
          const details = await this.hypervisor.getDomainDetails(d.uuid, bounded.signal)
          if (details.control.state === 'ok' || details.id < 0) this.stuck.delete(d.uuid)
        } catch (err) {
          if (err instanceof HypervisorError && err.code === 'DOMAIN_NOT_FOUND') this.stuck.delete(d.uuid)
        }
      }))
    } finally {
      bounded.dispose()
    }
  }
}

type FreshVcpus = Map<number, { state: number, timeNs: number }>

/** Each vCPU's kept record with its state and time replaced by what was read now (wait and delay stay as kept). */
function withFreshVcpus (stats: DomainStats[], now: Map<string, FreshVcpus>): void {
  for (const d of stats) {
    const fresh = now.get(d.uuid)
    if (fresh === undefined || d.vcpu === undefined || d.state.code === SHUTOFF) continue
    d.vcpu = { ...d.vcpu, vcpus: d.vcpu.vcpus.map(v => { const f = fresh.get(v.index); return f === undefined ? v : { ...v, state: f.state, timeNs: f.timeNs } }) }
  }
}

function isTimeout (err: unknown): boolean {
  return err instanceof HypervisorError && err.code === 'TIMEOUT'
}

/**
 * Up to `n` parts of about equal work: active domains dealt out in turn (an inactive one costs
 * libvirt no monitor query), inactive ones with the first part.
 */
function split (domains: DomainRef[], n: number): DomainRef[][] {
  const active = domains.filter(d => d.id >= 0)
  const count = Math.max(1, Math.min(n, Math.floor(active.length / MIN_DOMAINS_PER_CALL)))
  const parts: DomainRef[][] = Array.from({ length: count }, () => [])
  active.forEach((d, i) => parts[i % count].push(d))
  parts[0].push(...domains.filter(d => d.id < 0))
  return parts
}

function sample (f: { name: string, help: string, type: 'counter' | 'gauge' }, labels: Record<string, string>, value: number): Sample {
  return { name: f.name, help: f.help, type: f.type, labels, value }
}

/** The caller's signal plus our own deadline; `timedOut()` tells which one fired. */
function withTimeout (signal: AbortSignal, ms: number): { signal: AbortSignal, timedOut: () => boolean, dispose: () => void } {
  const own = new AbortController()
  const combined = AbortSignal.any([signal, own.signal])
  // One listener per call in flight (e.g. a details call per domain): not a leak.
  setMaxListeners(0, combined)
  const timer = setTimeout(() => own.abort(new HypervisorError('TIMEOUT', `deadline of ${ms} ms`)), ms)
  return {
    signal: combined,
    timedOut: () => own.signal.aborted && !signal.aborted,
    dispose: () => clearTimeout(timer)
  }
}
