/**
 * Pure: turns one raw bulk-statistics record (libvirt's flat "group.index.field" parameters) into a
 * typed DomainStats. Units stay libvirt's (ns, KiB, bytes). Fields libvirt did not report stay
 * absent; unknown fields (newer libvirt) are ignored.
 */
import type { BalloonStats, BlockStats, DomainStats, InterfaceStats, VcpuStats } from '../hypervisor'
import type { ParamValue, RawDomainStats } from './decode-domain-stats'
import { decodeDomainStatsReply } from './decode-domain-stats'

const BALLOON_FIELDS: Record<string, keyof BalloonStats> = {
  current: 'currentKiB',
  maximum: 'maximumKiB',
  swap_in: 'swapInKiB',
  swap_out: 'swapOutKiB',
  major_fault: 'majorFault',
  minor_fault: 'minorFault',
  unused: 'unusedKiB',
  available: 'availableKiB',
  usable: 'usableKiB',
  rss: 'rssKiB',
  disk_caches: 'diskCachesKiB',
  'last-update': 'lastUpdate'
}

const VCPU_FIELDS: Record<string, keyof VcpuStats> = { state: 'state', time: 'timeNs', wait: 'waitNs', delay: 'delayNs' }

const NET_FIELDS: Record<string, keyof InterfaceStats> = {
  'rx.bytes': 'rxBytes',
  'rx.pkts': 'rxPackets',
  'rx.errs': 'rxErrors',
  'rx.drop': 'rxDrops',
  'tx.bytes': 'txBytes',
  'tx.pkts': 'txPackets',
  'tx.errs': 'txErrors',
  'tx.drop': 'txDrops'
}

const BLOCK_FIELDS: Record<string, keyof BlockStats> = {
  'rd.reqs': 'rdReqs',
  'rd.bytes': 'rdBytes',
  'rd.times': 'rdTimesNs',
  'wr.reqs': 'wrReqs',
  'wr.bytes': 'wrBytes',
  'wr.times': 'wrTimesNs',
  'fl.reqs': 'flReqs',
  'fl.times': 'flTimesNs',
  allocation: 'allocation',
  capacity: 'capacity',
  physical: 'physical'
}

export function parseDomainStats (raw: RawDomainStats): DomainStats {
  const out: DomainStats = { name: raw.name, uuid: raw.uuid, state: { code: 0, reason: 0 }, interfaces: [], blocks: [] }
  const vcpus: VcpuStats[] = []
  const nets: Array<Partial<InterfaceStats>> = []
  const blocks: Array<Partial<BlockStats>> = []
  let balloon: Partial<BalloonStats> | undefined
  let vcpuCurrent: number | undefined
  let vcpuMaximum: number | undefined

  for (const [key, value] of raw.params) {
    const dot = key.indexOf('.')
    const group = key.slice(0, dot)
    const rest = key.slice(dot + 1)
    switch (group) {
      case 'state':
        if (rest === 'state') out.state.code = num(value)
        else if (rest === 'reason') out.state.reason = num(value)
        break
      case 'cpu':
        out.cpu ??= { timeNs: 0 }
        if (rest === 'time') out.cpu.timeNs = num(value)
        else if (rest === 'user') out.cpu.userNs = num(value)
        else if (rest === 'system') out.cpu.systemNs = num(value)
        break
      case 'balloon': {
        const field = BALLOON_FIELDS[rest]
        if (field !== undefined) (balloon ??= {})[field] = num(value)
        break
      }
      case 'vcpu':
        if (rest === 'current') vcpuCurrent = num(value)
        else if (rest === 'maximum') vcpuMaximum = num(value)
        else indexed(rest, (i, field) => {
          const name = VCPU_FIELDS[field]
          if (name === undefined) return
          vcpus[i] ??= { index: i }
          ;(vcpus[i] as unknown as Record<string, number>)[name] = num(value)
        })
        break
      case 'net':
        indexed(rest, (i, field) => {
          const entry = (nets[i] ??= {})
          if (field === 'name') entry.name = String(value)
          else {
            const name = NET_FIELDS[field]
            if (name !== undefined) (entry as Record<string, number>)[name] = num(value)
          }
        })
        break
      case 'block':
        indexed(rest, (i, field) => {
          const entry = (blocks[i] ??= {})
          if (field === 'name') entry.name = String(value)
          else if (field === 'path') entry.path = String(value)
          else {
            const name = BLOCK_FIELDS[field]
            if (name !== undefined) (entry as Record<string, number>)[name] = num(value)
          }
        })
        break
    }
  }

  if (balloon !== undefined) out.balloon = { currentKiB: 0, maximumKiB: 0, ...balloon }
  if (vcpuCurrent !== undefined || vcpus.length > 0) {
    out.vcpu = { current: vcpuCurrent ?? vcpus.length, maximum: vcpuMaximum ?? vcpus.length, vcpus: vcpus.filter(v => v !== undefined) }
  }
  for (const n of nets) {
    if (n?.name === undefined) continue
    out.interfaces.push({ rxBytes: 0, rxPackets: 0, rxErrors: 0, rxDrops: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDrops: 0, ...n } as InterfaceStats)
  }
  for (const b of blocks) {
    if (b?.name !== undefined) out.blocks.push(b as BlockStats)
  }
  return out
}

/** decode + parse of a whole reply body. */
export function parseDomainStatsReply (body: Buffer): DomainStats[] {
  return decodeDomainStatsReply(body).map(parseDomainStats)
}

/** "3.rx.bytes" → (3, "rx.bytes"); keys like "count" (no index) are skipped. */
function indexed (rest: string, apply: (index: number, field: string) => void): void {
  const dot = rest.indexOf('.')
  if (dot <= 0) return
  const index = Number(rest.slice(0, dot))
  if (!Number.isInteger(index) || index < 0 || index > 65535) return
  apply(index, rest.slice(dot + 1))
}

function num (value: ParamValue): number {
  return typeof value === 'number' ? value : typeof value === 'boolean' ? (value ? 1 : 0) : Number(value)
}
