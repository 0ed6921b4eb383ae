/**
 * Bulk-statistics reply bodies for tests and benchmarks: raw records (field → value, before any
 * interpretation) read from a captured reply, and replies written from records, in the wire format
 * libvirtd uses (remote_connect_get_all_domain_stats_ret).
 */
import { randomUUID } from 'node:crypto'
import { walkDomainStatsReply, type DomainStatsSink, type ParamValue } from '../../../host/libvirt/decode-domain-stats'
import { uuidToBytes } from '../../../host/libvirt/rpc/remote-types'
import { XdrWriter } from '../../../host/libvirt/rpc/xdr'

export interface RawRecord {
  name: string
  uuid: string
  params: Map<string, ParamValue>
}

const RAW: DomainStatsSink<RawRecord, RawRecord> = {
  begin: (name, uuid) => ({ name, uuid, params: new Map() }),
  param: (d, field, value) => { d.params.set(field, value) },
  end: d => d
}

export function rawRecords (body: Buffer): RawRecord[] {
  return walkDomainStatsReply(body, RAW)
}

/** Numbers as unsigned long long (what libvirt uses for counters), strings, booleans. */
function writeParam (w: XdrWriter, field: string, value: ParamValue): void {
  w.string(field)
  if (typeof value === 'string') { w.int(7).string(value); return }
  if (typeof value === 'boolean') { w.int(6).int(value ? 1 : 0); return }
  const v = Math.max(0, Math.round(value))
  w.int(4).uint(Math.floor(v / 4294967296)).uint(v % 4294967296)
}

export function statsReply (records: ReadonlyArray<{ name: string, uuid: string, params: Iterable<[string, ParamValue]> }>): Buffer {
  const w = new XdrWriter().uint(records.length)
  records.forEach((r, i) => {
    const params = [...r.params]
    w.string(r.name).fixedOpaque(uuidToBytes(r.uuid)).int(i + 1).uint(params.length)
    for (const [field, value] of params) writeParam(w, field, value)
  })
  return w.toBuffer()
}

/** `count` domains, each with the parameters of the record named `template` in `reply`. */
export function scaledReply (reply: Buffer, template: string, count: number): Buffer {
  const record = rawRecords(reply).find(r => r.name === template)
  if (record === undefined) throw new Error(`no domain ${template} in the reply`)
  return statsReply(Array.from({ length: count }, (_, i) => ({ name: `fedvm-replay-${i}`, uuid: randomUUID(), params: record.params })))
}
