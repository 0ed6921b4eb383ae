/**
 * The real Hypervisor: libvirtd's remote protocol over its unix socket, one connection kept open
 * and opened again on the next call after libvirtd went away (restart, crash). Bulk statistics
 * are one CONNECT_GET_ALL_DOMAIN_STATS call, as `virsh domstats` makes.
 */
import { HypervisorError } from '../errors'
import type { ControlState, DomainDetails, DomainRef, DomainStats, Hypervisor, StatsGroup, StatsRequest } from '../hypervisor'
import { domainStateName } from '../hypervisor'
import { parseDomainStatsReply } from './parse-domain-stats'
import { Proc } from './rpc/protocol'
import { RpcConnection, type CallOptions } from './rpc/rpc-connection'
import {
  decodeControlInfo, decodeDomainInfo, decodeGetVcpus, decodeListAllDomains, decodeLookupByUuid, decodeXmlDesc,
  encodeDomainArg, encodeGetAllDomainStats, encodeGetVcpus, encodeListAllDomains, encodeLookupByUuid
} from './rpc/remote-types'

/** VIR_DOMAIN_STATS_ STATE, CPU_TOTAL, BALLOON, VCPU, INTERFACE, BLOCK. */
const GROUP_BITS: Record<StatsGroup, number> = { state: 1, cpu: 2, balloon: 4, vcpu: 8, interface: 16, block: 32 }
/** Every group fedvm exports. */
const ALL_STATS_GROUPS = 1 | 2 | 4 | 8 | 16 | 32
const CONTROL_STATES: ControlState[] = ['ok', 'job', 'occupied', 'error']

export interface LibvirtOptions {
  /** Default: the read-only socket, enough for statistics (no write access to domains needed). */
  socketPath?: string
  /** Default qemu:///system. */
  uri?: string
  /** Bound on connecting + handshake. Default 5000 ms. */
  connectTimeoutMs?: number
  /**
   * libvirtd serves 5 calls at once per client (max_client_requests): once this many calls
   * were given up and are still unanswered, the next call opens a fresh connection. Default 3.
   */
  maxAbandonedCalls?: number
}

export const DEFAULT_SOCKET = '/run/libvirt/libvirt-sock-ro'

export class LibvirtHypervisor implements Hypervisor {
  private readonly socketPath: string
  private readonly uri: string
  private readonly connectTimeoutMs: number
  private readonly maxAbandonedCalls: number
  private connection: Promise<RpcConnection> | undefined
  private closed = false

  constructor (options: LibvirtOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_SOCKET
    this.uri = options.uri ?? 'qemu:///system'
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000
    this.maxAbandonedCalls = options.maxAbandonedCalls ?? 3
  }

  async listDomains (signal?: AbortSignal): Promise<DomainRef[]> {
    return decodeListAllDomains(await this.call(Proc.CONNECT_LIST_ALL_DOMAINS, encodeListAllDomains(0), { signal }))
  }

  async getDomainStats (request: StatsRequest = {}): Promise<DomainStats[]> {
    // libvirt reads an empty list as "every domain".
    if (request.domains?.length === 0) return []
    const groups = request.groups === undefined ? ALL_STATS_GROUPS : request.groups.reduce((bits, g) => bits | GROUP_BITS[g], GROUP_BITS.state)
    const body = encodeGetAllDomainStats(request.domains ?? [], groups, 0)
    return parseDomainStatsReply(await this.call(Proc.CONNECT_GET_ALL_DOMAIN_STATS, body, { signal: request.signal }))
  }

  /** The reply body of one bulk call, undecoded: for capturing fixtures and for bench/collect. */
  async getDomainStatsReply (signal?: AbortSignal): Promise<Buffer> {
    return await this.call(Proc.CONNECT_GET_ALL_DOMAIN_STATS, encodeGetAllDomainStats([], ALL_STATS_GROUPS, 0), { signal })
  }

  async getVcpus (domain: DomainRef, maxVcpus: number, signal?: AbortSignal): Promise<Array<{ index: number, state: number, timeNs: number }>> {
    return decodeGetVcpus(await this.call(Proc.DOMAIN_GET_VCPUS, encodeGetVcpus(domain, maxVcpus), { signal }))
  }

  async getDomainDetails (uuid: string, signal?: AbortSignal): Promise<DomainDetails> {
    const ref = decodeLookupByUuid(await this.call(Proc.DOMAIN_LOOKUP_BY_UUID, encodeLookupByUuid(uuid), { signal }))
    // An inactive domain has no control channel (libvirt refuses the call): nothing waits on it.
    const idle = { state: 0, details: 0, stateTimeMs: 0 }
    const [info, control] = await Promise.all([
      this.call(Proc.DOMAIN_GET_INFO, encodeDomainArg(ref, false), { signal }).then(decodeDomainInfo),
      ref.id < 0
        ? idle
        : this.call(Proc.DOMAIN_GET_CONTROL_INFO, encodeDomainArg(ref, true), { signal }).then(decodeControlInfo)
    ])
    return {
      ...ref,
      state: { code: info.state, name: domainStateName(info.state) },
      maxMemoryKiB: info.maxMemKiB,
      memoryKiB: info.memoryKiB,
      vcpus: info.vcpus,
      cpuTimeNs: info.cpuTimeNs,
      control: { state: CONTROL_STATES[control.state] ?? 'unknown', sinceMs: control.stateTimeMs }
    }
  }

  /**
   * The running definition (virDomainGetXMLDesc, flags 0: allowed on the read-only socket, no
   * secrets): where QEMU really listens, e.g. a channel's socket, whatever file it was defined from.
   */
  async getDomainXml (ref: DomainRef, signal?: AbortSignal): Promise<string> {
    return decodeXmlDesc(await this.call(Proc.DOMAIN_GET_XML_DESC, encodeDomainArg(ref, true), { signal }))
  }

  async close (): Promise<void> {
    this.closed = true
    const pending = this.connection
    this.connection = undefined
    if (pending !== undefined) await pending.then(c => c.close(), () => {})
  }

  /** One call on the kept connection; a connection that died before the call is replaced once. */
  private async call (proc: number, body: Buffer, options: CallOptions): Promise<Buffer> {
    const conn = await this.connect(options.signal)
    try {
      return await conn.call(proc, body, options)
    } catch (err) {
      if (err instanceof HypervisorError && err.code === 'CONNECTION_LOST' && conn.closed) {
        const fresh = await this.connect(options.signal)
        return await fresh.call(proc, body, options)
      }
      throw err
    }
  }

  private async connect (signal?: AbortSignal): Promise<RpcConnection> {
    if (this.closed) throw new HypervisorError('CLOSED', 'hypervisor connection was closed')
    if (this.connection !== undefined) {
      const conn = await this.connection.catch(() => undefined)
      if (conn !== undefined && !conn.closed && conn.abandoned < this.maxAbandonedCalls) return conn
      if (conn !== undefined && !conn.closed) void conn.close(true)
    }
    const opening = RpcConnection.open(this.socketPath, this.uri, { signal, timeoutMs: this.connectTimeoutMs })
    this.connection = opening
    opening.then(conn => conn.onClose(() => {
      if (this.connection === opening) this.connection = undefined
    }), () => {
      if (this.connection === opening) this.connection = undefined
    })
    return await opening
  }
}
