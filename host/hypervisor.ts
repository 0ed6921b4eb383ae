/**
 * The narrow view of a hypervisor the agent needs (after Telegraf's libvirt input): list the
 * domains, read the bulk statistics of many domains in one call, and look at one domain.
 * Implementations: host/libvirt/libvirt-hypervisor.ts (real) and host/fake/fake-hypervisor.ts.
 * One conformance suite (test/host/hypervisor-conformance.ts) runs against both.
 *
 * Statistics keep libvirt's own units (nanoseconds, KiB, bytes); converting to base units is the
 * exporter's job (host/libvirt/domain-samples.ts, host/data-points.ts).
 */

/** libvirt's virDomainState codes. */
export const DOMAIN_STATES = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'] as const
export type DomainStateName = typeof DOMAIN_STATES[number] | 'unknown'

export function domainStateName (code: number): DomainStateName {
  return DOMAIN_STATES[code] ?? 'unknown'
}

export interface DomainRef {
  name: string
  /** Lower-case 8-4-4-4-12 form. */
  uuid: string
  /** The running id, -1 when the domain is not active. */
  id: number
}

export interface CpuStats { timeNs: number, userNs?: number, systemNs?: number }

/** virtio balloon and memory statistics; every value but the counters in KiB. */
export interface BalloonStats {
  currentKiB: number
  maximumKiB: number
  swapInKiB?: number
  swapOutKiB?: number
  majorFault?: number
  minorFault?: number
  unusedKiB?: number
  availableKiB?: number
  usableKiB?: number
  rssKiB?: number
  diskCachesKiB?: number
  /** Unix time (s) of the guest's last balloon statistics update. */
  lastUpdate?: number
}

export interface VcpuStats {
  index: number
  /** virVcpuState: 0 offline, 1 running, 2 blocked. */
  state?: number
  timeNs?: number
  waitNs?: number
  delayNs?: number
}

export interface InterfaceStats {
  name: string
  rxBytes: number
  rxPackets: number
  rxErrors: number
  rxDrops: number
  txBytes: number
  txPackets: number
  txErrors: number
  txDrops: number
}

export interface BlockStats {
  /** Target device (vda, sdb, ...). */
  name: string
  path?: string
  rdReqs?: number
  rdBytes?: number
  rdTimesNs?: number
  wrReqs?: number
  wrBytes?: number
  wrTimesNs?: number
  flReqs?: number
  flTimesNs?: number
  /** Bytes: highest written offset, logical size, size of the container. */
  allocation?: number
  capacity?: number
  physical?: number
}

/** One domain's record of a bulk statistics call; absent groups were not reported. */
export interface DomainStats {
  name: string
  uuid: string
  state: { code: number, reason: number }
  cpu?: CpuStats
  balloon?: BalloonStats
  vcpu?: { current: number, maximum: number, vcpus: VcpuStats[] }
  interfaces: InterfaceStats[]
  blocks: BlockStats[]
}

/** How the hypervisor's control channel to a domain is doing (virDomainGetControlInfo). */
export type ControlState = 'ok' | 'job' | 'occupied' | 'error' | 'unknown'

export interface DomainDetails extends DomainRef {
  state: { code: number, name: DomainStateName }
  maxMemoryKiB: number
  memoryKiB: number
  vcpus: number
  cpuTimeNs: number
  /** `occupied` for N ms means the hypervisor has waited N ms for the domain's monitor. */
  control: { state: ControlState, sinceMs: number }
}

/**
 * The groups of a bulk statistics call (libvirt's VIR_DOMAIN_STATS_*). Each but `state` and
 * `interface` costs libvirt QEMU monitor commands per domain (libvirt 9.0: cpu 1, balloon 2,
 * vcpu 2, block 3): a caller that needs a few data points asks for their groups only.
 */
export const STATS_GROUPS = ['state', 'cpu', 'balloon', 'vcpu', 'interface', 'block'] as const
export type StatsGroup = typeof STATS_GROUPS[number]

export interface StatsRequest {
  /** Only these domains (by uuid); all domains, active and inactive, when absent. */
  domains?: readonly DomainRef[]
  /** Only these groups (`state` is always reported); all of them when absent. */
  groups?: readonly StatsGroup[]
  signal?: AbortSignal
}

export interface Hypervisor {
  listDomains (signal?: AbortSignal): Promise<DomainRef[]>
  /** One bulk call (virConnectGetAllDomainStats); a requested domain that vanished is left out. */
  getDomainStats (request?: StatsRequest): Promise<DomainStats[]>
  /** Rejects with HypervisorError code DOMAIN_NOT_FOUND for an unknown uuid. */
  getDomainDetails (uuid: string, signal?: AbortSignal): Promise<DomainDetails>
  /**
   * A running domain's vCPU state and time (virDomainGetVcpus: libvirt reads each vCPU thread's
   * /proc entry, no QEMU monitor command); wait and delay are only in the vcpu statistics group.
   */
  getVcpus? (domain: DomainRef, maxVcpus: number, signal?: AbortSignal): Promise<Array<Required<Pick<VcpuStats, 'index' | 'state' | 'timeNs'>>>>
  close (): Promise<void>
}
