/**
 * Changes to a running domain over libvirt's remote protocol (remote_protocol.x), for the paper's
 * Control interface: run state (virDomainSuspend, virDomainResume, virDomainShutdown,
 * virDomainCreate) and resources (virDomainSetMemoryFlags, virDomainSetVcpusFlags, live).
 */
import type { DomainRef } from '../../hypervisor'
import { HypervisorError } from '../../errors'
import { DomainTimeProc, encodeLookupByName } from './domain-time'
import { readDomain, writeDomain } from './remote-types'
import { RpcConnection } from './rpc-connection'
import { XdrReader, XdrWriter } from './xdr'

export const DomainControlProc = {
  DOMAIN_CREATE: 9,
  DOMAIN_RESUME: 28,
  DOMAIN_SHUTDOWN: 33,
  DOMAIN_SUSPEND: 34,
  DOMAIN_SET_VCPUS_FLAGS: 199,
  DOMAIN_SET_MEMORY_FLAGS: 204,
} as const

/** virDomainModificationImpact: the running domain only (its persistent definition is the folder's domain.xml). */
export const AFFECT_LIVE = 1

/** remote_domain_set_memory_flags_args: domain, unsigned hyper memory (KiB), unsigned flags. */
export function encodeSetMemoryFlags (domain: DomainRef, kib: number, flags: number): Buffer {
  const memory = Buffer.alloc(8)
  memory.writeBigUInt64BE(BigInt(kib))
  return writeDomain(new XdrWriter(), domain).fixedOpaque(memory).uint(flags).toBuffer()
}

/** remote_domain_set_vcpus_flags_args: domain, unsigned nvcpus, unsigned flags. */
export function encodeSetVcpusFlags (domain: DomainRef, vcpus: number, flags: number): Buffer {
  return writeDomain(new XdrWriter(), domain).uint(vcpus).uint(flags).toBuffer()
}

type RunProc = typeof DomainControlProc.DOMAIN_CREATE | typeof DomainControlProc.DOMAIN_RESUME | typeof DomainControlProc.DOMAIN_SHUTDOWN | typeof DomainControlProc.DOMAIN_SUSPEND

export class DomainControl {
  /** `target`: libvirtd's unix socket and the URI to open on it (guest-clock.ts rpcTarget). */
  constructor (private readonly target: { socketPath: string, uri: string }, private readonly timeoutMs = 30_000) {}

  /** One of the run-state procedures, whose only argument is the domain. */
  async run (name: string, proc: RunProc): Promise<void> {
    await this.onDomain(name, async (call, ref) => { await call(proc, writeDomain(new XdrWriter(), ref).toBuffer()) })
  }

  /** The running domain's balloon target (MiB). libvirt refuses more than the domain's maximum memory. */
  async setMemoryLive (name: string, memoryMiB: number): Promise<void> {
    await this.onDomain(name, async (call, ref) => { await call(DomainControlProc.DOMAIN_SET_MEMORY_FLAGS, encodeSetMemoryFlags(ref, memoryMiB * 1024, AFFECT_LIVE)) })
  }

  /** The running domain's vCPUs (hot-plug); libvirt refuses more than its maximum vCPUs. */
  async setVcpusLive (name: string, vcpus: number): Promise<void> {
    await this.onDomain(name, async (call, ref) => { await call(DomainControlProc.DOMAIN_SET_VCPUS_FLAGS, encodeSetVcpusFlags(ref, vcpus, AFFECT_LIVE)) })
  }

  private async onDomain (name: string, act: (call: (proc: number, body: Buffer) => Promise<Buffer>, ref: DomainRef) => Promise<void>): Promise<void> {
    const conn = await RpcConnection.open(this.target.socketPath, this.target.uri, { timeoutMs: this.timeoutMs })
    try {
      const call = async (proc: number, body: Buffer): Promise<Buffer> => await conn.call(proc, body, { timeoutMs: this.timeoutMs })
      const ref = readDomain(new XdrReader(await call(DomainTimeProc.DOMAIN_LOOKUP_BY_NAME, encodeLookupByName(name))))
      if (ref === undefined) throw new HypervisorError('DOMAIN_NOT_FOUND', `no domain ${name}`)
      await act(call, ref)
    } finally {
      await conn.close().catch(() => {})
    }
  }
}
