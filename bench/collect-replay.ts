/**
 * For bench/collect: a bulk-stats reply scaled to N domains from one real record, and a
 * Hypervisor that answers every bulk call by decoding that reply with the real decoder.
 */
import { randomUUID } from 'node:crypto'
import { decodeDomainStatsReply, type ParamValue } from '../host/libvirt/decode-domain-stats'
import { parseDomainStatsReply } from '../host/libvirt/parse-domain-stats'
import { XdrWriter } from '../host/libvirt/rpc/xdr'
import { uuidToBytes } from '../host/libvirt/rpc/remote-types'
import type { DomainDetails, DomainRef, DomainStats, Hypervisor } from '../host/hypervisor'

/** XDR type tags of remote_typed_param_value: unsigned long long for numbers, string, boolean. */
function writeParam (w: XdrWriter, field: string, value: ParamValue): void {
  w.string(field)
  if (typeof value === 'string') { w.int(7).string(value); return }
  if (typeof value === 'boolean') { w.int(6).int(value ? 1 : 0); return }
  const v = Math.max(0, Math.round(value))
  w.int(4).uint(Math.floor(v / 4294967296)).uint(v % 4294967296)
}

export function scaledReply (reply: Buffer, template: string, count: number): Buffer {
  const record = decodeDomainStatsReply(reply).find(r => r.name === template)
  if (record === undefined) throw new Error(`no domain ${template} in the reply`)
  const w = new XdrWriter().uint(count)
  for (let i = 0; i < count; i++) {
    w.string(`fedvm-replay-${i}`).fixedOpaque(uuidToBytes(randomUUID())).int(i + 1)
    w.uint(record.params.size)
    for (const [field, value] of record.params) writeParam(w, field, value)
  }
  return w.toBuffer()
}

export class ReplayHypervisor implements Hypervisor {
  constructor (private readonly body: Buffer) {}
  async listDomains (): Promise<DomainRef[]> { return (await this.getDomainStats()).map((d, i) => ({ name: d.name, uuid: d.uuid, id: i + 1 })) }
  async getDomainStats (): Promise<DomainStats[]> { return parseDomainStatsReply(this.body) }
  async getDomainDetails (): Promise<DomainDetails> { throw new Error('not replayed') }
  async close (): Promise<void> {}
}
