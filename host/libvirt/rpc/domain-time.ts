/**
 * virDomainSetTime over libvirt's remote protocol (remote_protocol.x): the guest agent sets the
 * guest's clock. Kept apart from protocol.ts so its procedure list stays what the statistics use.
 */
import type { DomainRef } from '../../hypervisor'
import { readDomain, writeDomain } from './remote-types'
import type { CallOptions, RpcConnection } from './rpc-connection'
import { XdrReader, XdrWriter } from './xdr'

export const DomainTimeProc = {
  DOMAIN_LOOKUP_BY_NAME: 23,
  DOMAIN_GET_TIME: 337,
  DOMAIN_SET_TIME: 338
} as const

/** remote_domain_lookup_by_name_args: the name as a remote_nonnull_string. */
export function encodeLookupByName (name: string): Buffer {
  return new XdrWriter().string(name).toBuffer()
}

/** remote_domain_set_time_args: domain, hyper seconds, unsigned nseconds, flags (0: set, not VIR_DOMAIN_TIME_SYNC). */
export function encodeSetTime (domain: DomainRef, epochMs: number): Buffer {
  const seconds = Buffer.alloc(8)
  seconds.writeBigInt64BE(BigInt(Math.floor(epochMs / 1000)))
  return writeDomain(new XdrWriter(), domain)
    .fixedOpaque(seconds)
    .uint(Math.round((epochMs % 1000) * 1e6))
    .uint(0)
    .toBuffer()
}

/** Sets the guest clock of domain `name` to `now()` (milliseconds since the epoch), read just before the call goes out. */
export async function setDomainTime (conn: RpcConnection, name: string, now: () => number = Date.now, options: CallOptions = {}): Promise<void> {
  const domain = readDomain(new XdrReader(await conn.call(DomainTimeProc.DOMAIN_LOOKUP_BY_NAME, encodeLookupByName(name), options)))
  await conn.call(DomainTimeProc.DOMAIN_SET_TIME, encodeSetTime(domain, now()), options)
}

/** remote_domain_get_time_ret: hyper seconds, unsigned nseconds; as milliseconds since the epoch. */
export function decodeGetTime (body: Buffer): number {
  const r = new XdrReader(body)
  const seconds = r.hyper()
  return seconds * 1000 + r.uint() / 1e6
}

/** The guest's clock of domain `name` as its guest agent reads it (milliseconds since the epoch). */
export async function getDomainTime (conn: RpcConnection, name: string, options: CallOptions = {}): Promise<number> {
  const domain = readDomain(new XdrReader(await conn.call(DomainTimeProc.DOMAIN_LOOKUP_BY_NAME, encodeLookupByName(name), options)))
  // remote_domain_get_time_args: the domain and flags (none).
  return decodeGetTime(await conn.call(DomainTimeProc.DOMAIN_GET_TIME, writeDomain(new XdrWriter(), domain).uint(0).toBuffer(), options))
}
