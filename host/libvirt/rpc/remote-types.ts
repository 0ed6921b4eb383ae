/** Encoders and decoders of the remote_protocol.x types and calls fedvm uses (not the stats reply: see ../decode-domain-stats.ts). */
import { XdrReader, XdrWriter } from './xdr'
import type { DomainRef } from '../../hypervisor'
import { HypervisorError } from '../../errors'

const DOMAIN_LIST_MAX = 16384
const AUTH_TYPE_LIST_MAX = 20

export function uuidToString (bytes: Buffer): string {
  const h = bytes.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

export function uuidToBytes (uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '')
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new HypervisorError('DOMAIN_NOT_FOUND', `not a domain uuid: ${JSON.stringify(uuid)}`)
  return Buffer.from(hex, 'hex')
}

/** remote_nonnull_domain: name, uuid, id. */
export function readDomain (r: XdrReader): DomainRef {
  const name = r.string()
  const uuid = uuidToString(r.fixedOpaque(16))
  const id = r.int()
  return { name, uuid, id }
}

export function writeDomain (w: XdrWriter, d: DomainRef): XdrWriter {
  return w.string(d.name).fixedOpaque(uuidToBytes(d.uuid)).int(d.id)
}

export function encodeConnectOpen (uri: string | null): Buffer {
  return new XdrWriter().optionalString(uri).uint(0).toBuffer()
}

export function decodeAuthList (body: Buffer): number[] {
  const r = new XdrReader(body)
  const n = r.count(AUTH_TYPE_LIST_MAX)
  const types: number[] = []
  for (let i = 0; i < n; i++) types.push(r.int())
  return types
}

export function encodeListAllDomains (flags: number): Buffer {
  return new XdrWriter().int(1).uint(flags).toBuffer()
}

export function decodeListAllDomains (body: Buffer): DomainRef[] {
  const r = new XdrReader(body)
  const n = r.count(DOMAIN_LIST_MAX)
  const out: DomainRef[] = []
  for (let i = 0; i < n; i++) out.push(readDomain(r))
  return out
}

export function encodeGetAllDomainStats (domains: readonly DomainRef[], stats: number, flags: number): Buffer {
  const w = new XdrWriter().uint(domains.length)
  for (const d of domains) writeDomain(w, d)
  return w.uint(stats).uint(flags).toBuffer()
}

export function encodeLookupByUuid (uuid: string): Buffer {
  return new XdrWriter().fixedOpaque(uuidToBytes(uuid)).toBuffer()
}

export function decodeLookupByUuid (body: Buffer): DomainRef {
  return readDomain(new XdrReader(body))
}

export function encodeDomainArg (d: DomainRef, withFlags: boolean): Buffer {
  const w = writeDomain(new XdrWriter(), d)
  if (withFlags) w.uint(0)
  return w.toBuffer()
}

/** remote_domain_get_xml_desc_ret: the XML as one remote_nonnull_string. */
export function decodeXmlDesc (body: Buffer): string {
  return new XdrReader(body).string()
}

export interface DomainInfo { state: number, maxMemKiB: number, memoryKiB: number, vcpus: number, cpuTimeNs: number }

/** remote_domain_get_info_ret: char and short travel as 4-byte units in XDR. */
export function decodeDomainInfo (body: Buffer): DomainInfo {
  const r = new XdrReader(body)
  return { state: r.uint(), maxMemKiB: r.uhyper(), memoryKiB: r.uhyper(), vcpus: r.uint(), cpuTimeNs: r.uhyper() }
}

/** remote_domain_get_vcpus_args: domain, maxinfo, maplen 0 (no CPU affinity maps wanted). */
export function encodeGetVcpus (d: DomainRef, maxinfo: number): Buffer {
  return writeDomain(new XdrWriter(), d).int(maxinfo).int(0).toBuffer()
}

const VCPUINFO_MAX = 16384

/** remote_domain_get_vcpus_ret: info<> of remote_vcpu_info {unsigned number, int state, unsigned hyper cpu_time, int cpu}, then cpumaps<> (empty). */
export function decodeGetVcpus (body: Buffer): Array<{ index: number, state: number, timeNs: number }> {
  const r = new XdrReader(body)
  const n = r.count(VCPUINFO_MAX)
  const out: Array<{ index: number, state: number, timeNs: number }> = []
  for (let i = 0; i < n; i++) {
    const index = r.uint()
    const state = r.int()
    const timeNs = r.uhyper()
    r.int() // the host CPU it last ran on
    out.push({ index, state, timeNs })
  }
  return out
}

export interface ControlInfo { state: number, details: number, stateTimeMs: number }

export function decodeControlInfo (body: Buffer): ControlInfo {
  const r = new XdrReader(body)
  return { state: r.uint(), details: r.uint(), stateTimeMs: r.uhyper() }
}

export interface RemoteError { code: number, domain: number, message: string }

/** remote_error: only the leading fields are read; the rest (level, dom, str1-3, ...) is not needed. */
export function decodeRemoteError (body: Buffer): RemoteError {
  const r = new XdrReader(body)
  const code = r.int()
  const domain = r.int()
  const message = r.optionalString() ?? `libvirt error ${code}`
  return { code, domain, message }
}
