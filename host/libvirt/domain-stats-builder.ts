/**
 * Builds one typed DomainStats from libvirt's flat "group.index.field" parameters, one parameter at
 * a time. What a field name means is worked out once per distinct name and kept as a small setter
 * (a reply of 1,000 domains repeats the same ~70 names): the hot path is one Map lookup and one
 * call per parameter, with no slicing of the name. Units stay libvirt's (ns, KiB, bytes); fields
 * libvirt did not report stay absent; unknown fields (newer libvirt) are ignored.
 */
import type { BalloonStats, BlockStats, CpuStats, DomainStats, InterfaceStats, VcpuStats } from '../hypervisor'
import type { ParamValue } from './decode-domain-stats'

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

export class DomainStatsBuilder {
  readonly state = { code: 0, reason: 0 }
  cpu: CpuStats | undefined
  balloon: Partial<BalloonStats> | undefined
  vcpuCurrent: number | undefined
  vcpuMaximum: number | undefined
  readonly vcpus: VcpuStats[] = []
  readonly nets: Array<Partial<InterfaceStats>> = []
  readonly blocks: Array<Partial<BlockStats>> = []

  constructor (readonly name: string, readonly uuid: string) {}

  set (field: string, value: ParamValue): void {
    const setter = setterFor(field)
    if (setter !== null) setter(this, value)
  }

  finish (): DomainStats {
    const out: DomainStats = { name: this.name, uuid: this.uuid, state: this.state, interfaces: [], blocks: [] }
    if (this.cpu !== undefined) out.cpu = this.cpu
    if (this.balloon !== undefined) out.balloon = { currentKiB: 0, maximumKiB: 0, ...this.balloon }
    const vcpus = this.vcpus
    if (this.vcpuCurrent !== undefined || vcpus.length > 0) {
      out.vcpu = { current: this.vcpuCurrent ?? vcpus.length, maximum: this.vcpuMaximum ?? vcpus.length, vcpus: vcpus.filter(v => v !== undefined) }
    }
    for (const n of this.nets) {
      if (n?.name === undefined) continue
      out.interfaces.push({ rxBytes: 0, rxPackets: 0, rxErrors: 0, rxDrops: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDrops: 0, ...n } as InterfaceStats)
    }
    for (const b of this.blocks) {
      if (b?.name !== undefined) out.blocks.push(b as BlockStats)
    }
    return out
  }
}

type Setter = (b: DomainStatsBuilder, value: ParamValue) => void

/** Setters by field name; null for a field that is ignored. Bounded: names beyond it are worked out each time. */
const setters = new Map<string, Setter | null>()
const SETTERS_MAX = 4096

function setterFor (field: string): Setter | null {
  let setter = setters.get(field)
  if (setter === undefined) {
    setter = makeSetter(field)
    if (setters.size < SETTERS_MAX) setters.set(field, setter)
  }
  return setter
}

function makeSetter (key: string): Setter | null {
  const dot = key.indexOf('.')
  if (dot < 0) return null
  const group = key.slice(0, dot)
  const rest = key.slice(dot + 1)
  switch (group) {
    case 'state':
      if (rest === 'state') return (b, v) => { b.state.code = num(v) }
      if (rest === 'reason') return (b, v) => { b.state.reason = num(v) }
      return null
    case 'cpu': {
      // Any cpu.* field means libvirt reported the cpu group.
      const name = rest === 'time' ? 'timeNs' : rest === 'user' ? 'userNs' : rest === 'system' ? 'systemNs' : undefined
      if (name === undefined) return b => { b.cpu ??= { timeNs: 0 } }
      return (b, v) => { (b.cpu ??= { timeNs: 0 })[name] = num(v) }
    }
    case 'balloon': {
      const name = own(BALLOON_FIELDS, rest)
      return name === undefined ? null : (b, v) => { (b.balloon ??= {})[name] = num(v) }
    }
    case 'vcpu': {
      if (rest === 'current') return (b, v) => { b.vcpuCurrent = num(v) }
      if (rest === 'maximum') return (b, v) => { b.vcpuMaximum = num(v) }
      const at = indexed(rest)
      const name = at === undefined ? undefined : own(VCPU_FIELDS, at.field)
      if (at === undefined || name === undefined) return null
      const i = at.index
      return (b, v) => { ((b.vcpus[i] ??= { index: i }) as unknown as Record<string, number>)[name] = num(v) }
    }
    case 'net': {
      const at = indexed(rest)
      if (at === undefined) return null
      const i = at.index
      if (at.field === 'name') return (b, v) => { (b.nets[i] ??= {}).name = String(v) }
      const name = own(NET_FIELDS, at.field)
      if (name === undefined) return b => { b.nets[i] ??= {} }
      return (b, v) => { ((b.nets[i] ??= {}) as Record<string, number>)[name] = num(v) }
    }
    case 'block': {
      const at = indexed(rest)
      if (at === undefined) return null
      const i = at.index
      if (at.field === 'name') return (b, v) => { (b.blocks[i] ??= {}).name = String(v) }
      if (at.field === 'path') return (b, v) => { (b.blocks[i] ??= {}).path = String(v) }
      const name = own(BLOCK_FIELDS, at.field)
      if (name === undefined) return b => { b.blocks[i] ??= {} }
      return (b, v) => { ((b.blocks[i] ??= {}) as Record<string, number>)[name] = num(v) }
    }
    default:
      return null
  }
}

/** "3.rx.bytes" → (3, "rx.bytes"); keys like "count" (no index) are skipped. */
function indexed (rest: string): { index: number, field: string } | undefined {
  const dot = rest.indexOf('.')
  if (dot <= 0) return undefined
  const index = Number(rest.slice(0, dot))
  if (!Number.isInteger(index) || index < 0 || index > 65535) return undefined
  return { index, field: rest.slice(dot + 1) }
}

function own<V> (table: Record<string, V>, key: string): V | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined
}

function num (value: ParamValue): number {
  return typeof value === 'number' ? value : typeof value === 'boolean' ? (value ? 1 : 0) : Number(value)
}
