/**
 * The reads a VM host makes about single domains and the machine (what `virsh domstate`, `dumpxml`,
 * `list`+`dominfo` and `nodeinfo` print), as remote-protocol calls on one kept connection instead of
 * a virsh process each. Life-cycle changes (save, restore, define, start, ...) stay with virsh
 * (../lifecycle-virsh.ts): they are rare, and virsh knows every call's arguments.
 */
import { HypervisorError } from '../../errors'
import type { DomainRef } from '../../hypervisor'
import type { Resources } from '../lifecycle-resources'
import { RpcConnection } from './rpc-connection'
import { decodeDomainInfo, decodeListAllDomains, decodeXmlDesc, encodeListAllDomains, readDomain, writeDomain } from './remote-types'
import { DomainTimeProc, encodeLookupByName } from './domain-time'
import { XdrReader, XdrWriter } from './xdr'

/** remote_protocol.x procedure numbers of these reads (the others fedvm calls are in protocol.ts). */
const NODE_GET_INFO = 6
const DOMAIN_GET_XML_DESC = 14
const DOMAIN_GET_INFO = 16
const DOMAIN_GET_STATE = 212
const CONNECT_LIST_ALL_DOMAINS = 273

/** VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE: `virsh dumpxml --inactive --security-info`. */
export const XML_INACTIVE_SECURE = 1 | 2
/** `virsh dumpxml --inactive`. */
export const XML_INACTIVE = 2

/** virDomainState as `virsh domstate` words it. */
const STATE_NAMES = ['no state', 'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'] as const
export type DomainStateName = typeof STATE_NAMES[number]

export function decodeNodeInfo (body: Buffer): Resources {
  const r = new XdrReader(body)
  // `char model[32]`: rpcgen writes an array of char as 32 XDR ints (4 bytes each), not as opaque bytes.
  for (let i = 0; i < 32; i++) r.int()
  const memoryKiB = r.uhyper()
  const cpus = r.int()
  return { memoryMiB: Math.floor(memoryKiB / 1024), vcpus: cpus }
}

export function decodeState (body: Buffer): DomainStateName {
  const state = new XdrReader(body).int()
  return STATE_NAMES[state] ?? 'no state'
}

/**
 * Each read opens its own connection and closes it: a VM host reads a handful of times per
 * migration, and a connection kept open would keep the site's process from exiting.
 */
export class DomainReads {
  /** `target`: libvirtd's unix socket and the URI to open on it (guest-clock.ts rpcTarget reads them from a virsh URI). */
  constructor (private readonly target: { socketPath: string, uri: string }, private readonly timeoutMs = 30_000) {}

  /** The domain's state, or undefined when no domain of that name is defined or running. */
  async state (name: string): Promise<DomainStateName | undefined> {
    return await this.session(async (call) => {
      const ref = await lookup(call, name)
      if (ref === undefined) return undefined
      try {
        return decodeState(await call(DOMAIN_GET_STATE, writeDomain(new XdrWriter(), ref).uint(0).toBuffer()))
      } catch (err) {
        if (err instanceof HypervisorError && err.code === 'DOMAIN_NOT_FOUND') return undefined
        throw err
      }
    })
  }

  /** The domain's XML (flags: XML_INACTIVE, XML_INACTIVE_SECURE). */
  async xml (name: string, flags: number): Promise<string> {
    return await this.session(async (call) => {
      const ref = await lookup(call, name)
      if (ref === undefined) throw new HypervisorError('DOMAIN_NOT_FOUND', `no domain ${name}`)
      return decodeXmlDesc(await call(DOMAIN_GET_XML_DESC, writeDomain(new XdrWriter(), ref).uint(flags).toBuffer()))
    })
  }

  /** Memory and vCPUs of every defined domain, running or not (a shut-off one may start again). */
  async domainResources (): Promise<Resources[]> {
    return await this.session(async (call) => {
      const domains = decodeListAllDomains(await call(CONNECT_LIST_ALL_DOMAINS, encodeListAllDomains(0)))
      return await Promise.all(domains.map(async (ref) => {
        const info = decodeDomainInfo(await call(DOMAIN_GET_INFO, writeDomain(new XdrWriter(), ref).toBuffer()))
        return { memoryMiB: Math.ceil(info.maxMemKiB / 1024), vcpus: info.vcpus }
      }))
    })
  }

  /** The machine's memory and CPUs. */
  async nodeInfo (): Promise<Resources> {
    return await this.session(async (call) => decodeNodeInfo(await call(NODE_GET_INFO, Buffer.alloc(0))))
  }

  private async session<T> (reads: (call: Call) => Promise<T>): Promise<T> {
    const conn = await RpcConnection.open(this.target.socketPath, this.target.uri, { timeoutMs: this.timeoutMs })
    try {
      return await reads(async (proc, body) => await conn.call(proc, body, { timeoutMs: this.timeoutMs }))
    } finally {
      await conn.close().catch(() => {})
    }
  }
}

type Call = (proc: number, body: Buffer) => Promise<Buffer>

async function lookup (call: Call, name: string): Promise<DomainRef | undefined> {
  try {
    return readDomain(new XdrReader(await call(DomainTimeProc.DOMAIN_LOOKUP_BY_NAME, encodeLookupByName(name))))
  } catch (err) {
    if (err instanceof HypervisorError && err.code === 'DOMAIN_NOT_FOUND') return undefined
    throw err
  }
}
