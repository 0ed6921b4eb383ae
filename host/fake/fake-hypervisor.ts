/**
 * An in-memory Hypervisor for unit tests and benchmarks. Behaves like the libvirt one on the
 * points the conformance suite checks (inactive domains report only their state, unknown uuid →
 * DOMAIN_NOT_FOUND, vanished domains are left out, an aborted call rejects with ABORTED), and can
 * be told to misbehave: a stuck domain makes every bulk call that includes it hang (and shows
 * `occupied` control), `down` makes every call fail like a stopped libvirtd.
 */
import { HypervisorError } from '../errors'
import type { DomainDetails, DomainRef, DomainStats, Hypervisor, StatsGroup, StatsRequest } from '../hypervisor'
import { domainStateName } from '../hypervisor'

export interface FakeDomain {
  name: string
  uuid: string
  /** Stats reported while active; `state` decides whether the domain is active. */
  stats: DomainStats
  stuck: boolean
}

export class FakeHypervisor implements Hypervisor {
  readonly domains = new Map<string, FakeDomain>()
  down = false
  calls = 0
  /** The uuids each getDomainStats call asked for (undefined: all), in call order. */
  readonly statsRequests: Array<string[] | undefined> = []
  /** The groups each bulk statistics call asked for (undefined: all). */
  readonly statsGroups: Array<readonly StatsGroup[] | undefined> = []
  vcpuCalls = 0
  /** The most getDomainStats calls that were in flight at once. */
  maxStatsInFlight = 0
  private statsInFlight = 0
  private nextId = 1
  private readonly ids = new Map<string, number>()
  private closed = false

  /** Adds (or replaces) a domain; running unless `stats.state.code` says otherwise. */
  define (stats: DomainStats): FakeDomain {
    const d: FakeDomain = { name: stats.name, uuid: stats.uuid, stats, stuck: false }
    this.domains.set(stats.uuid, d)
    if (isActive(stats)) this.ids.set(stats.uuid, this.nextId++)
    return d
  }

  /** Like `virsh destroy`: the domain stays defined, shut off. */
  stop (uuid: string): void {
    const d = this.get(uuid)
    d.stats = { name: d.name, uuid: d.uuid, state: { code: 5, reason: 1 }, interfaces: [], blocks: [] }
    this.ids.delete(uuid)
  }

  undefine (uuid: string): void {
    this.domains.delete(uuid)
    this.ids.delete(uuid)
  }

  async listDomains (signal?: AbortSignal): Promise<DomainRef[]> {
    this.enter(signal)
    return [...this.domains.values()].map(d => this.ref(d))
  }

  async getDomainStats (request: StatsRequest = {}): Promise<DomainStats[]> {
    this.enter(request.signal)
    this.statsRequests.push(request.domains?.map(d => d.uuid))
    this.statsGroups.push(request.groups)
    this.maxStatsInFlight = Math.max(this.maxStatsInFlight, ++this.statsInFlight)
    try {
      // Answers in a later turn of the event loop, as a daemon does: calls made together overlap.
      await new Promise(resolve => setImmediate(resolve))
      return await this.statsNow(request)
    } finally {
      this.statsInFlight--
    }
  }

  private async statsNow (request: StatsRequest): Promise<DomainStats[]> {
    const wanted = request.domains === undefined
      ? [...this.domains.values()]
      : request.domains.map(r => this.domains.get(r.uuid)).filter((d): d is FakeDomain => d !== undefined)
    if (wanted.some(d => d.stuck && isActive(d.stats))) await hangUntilAborted(request.signal)
    return wanted.map(d => onlyGroups(structuredClone(inactiveView(d.stats)), request.groups))
  }

  /** Answers for a stuck domain too: libvirt reads vCPU threads from /proc, not through the monitor. */
  async getVcpus (domain: DomainRef, maxVcpus: number, signal?: AbortSignal): Promise<Array<{ index: number, state: number, timeNs: number }>> {
    this.enter(signal)
    this.vcpuCalls++
    const s = this.get(domain.uuid).stats
    if (!isActive(s)) throw new HypervisorError('PROTOCOL', 'domain is not running')
    return (s.vcpu?.vcpus ?? []).slice(0, maxVcpus).map(v => ({ index: v.index, state: v.state ?? 0, timeNs: v.timeNs ?? 0 }))
  }

  async getDomainDetails (uuid: string, signal?: AbortSignal): Promise<DomainDetails> {
    this.enter(signal)
    const d = this.domains.get(uuid)
    if (d === undefined) throw new HypervisorError('DOMAIN_NOT_FOUND', `no domain with uuid ${uuid}`)
    const s = d.stats
    return {
      ...this.ref(d),
      state: { code: s.state.code, name: domainStateName(s.state.code) },
      maxMemoryKiB: s.balloon?.maximumKiB ?? 0,
      memoryKiB: s.balloon?.currentKiB ?? 0,
      vcpus: s.vcpu?.current ?? 0,
      cpuTimeNs: s.cpu?.timeNs ?? 0,
      control: d.stuck && isActive(s) ? { state: 'occupied', sinceMs: 1000 } : { state: 'ok', sinceMs: 0 }
    }
  }

  async close (): Promise<void> { this.closed = true }

  private get (uuid: string): FakeDomain {
    const d = this.domains.get(uuid)
    if (d === undefined) throw new HypervisorError('DOMAIN_NOT_FOUND', `no domain with uuid ${uuid}`)
    return d
  }

  private ref (d: FakeDomain): DomainRef {
    return { name: d.name, uuid: d.uuid, id: this.ids.get(d.uuid) ?? -1 }
  }

  private enter (signal: AbortSignal | undefined): void {
    this.calls++
    if (this.closed) throw new HypervisorError('CLOSED', 'hypervisor connection was closed')
    if (signal?.aborted === true) throw new HypervisorError('ABORTED', 'call aborted', { cause: signal.reason })
    if (this.down) throw new HypervisorError('CONNECT_FAILED', 'fake libvirtd is down')
  }
}

function isActive (s: DomainStats): boolean {
  return s.state.code !== 5 && s.state.code !== 0
}

/** Like libvirt, leaves out the groups that were not asked for (state always stays). */
function onlyGroups (s: DomainStats, groups: readonly StatsGroup[] | undefined): DomainStats {
  if (groups === undefined) return s
  if (!groups.includes('cpu')) delete s.cpu
  if (!groups.includes('balloon')) delete s.balloon
  if (!groups.includes('vcpu')) delete s.vcpu
  if (!groups.includes('interface')) s.interfaces = []
  if (!groups.includes('block')) s.blocks = []
  return s
}

/** libvirt reports only state (and balloon size) for an inactive domain. */
function inactiveView (s: DomainStats): DomainStats {
  if (isActive(s)) return s
  return { name: s.name, uuid: s.uuid, state: s.state, interfaces: [], blocks: [] }
}

function hangUntilAborted (signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal === undefined) return // hangs for good, like libvirt waiting on a dead monitor
    if (signal.aborted) { reject(new HypervisorError('ABORTED', 'call aborted', { cause: signal.reason })); return }
    signal.addEventListener('abort', () => reject(new HypervisorError('ABORTED', 'call aborted', { cause: signal.reason })), { once: true })
  })
}
