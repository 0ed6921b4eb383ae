/**
 * Pure: one domain's statistics as the named data points a monitoring specifier can ask for
 * (DESIGN Contract 3: `"metric": "cpu.time"`). Names follow libvirt's domain-stats keys; values are
 * in base units. The list:
 *
 *   state.state, state.reason                          libvirt codes (1 running, 3 paused, 5 shut off, ...)
 *   cpu.time, cpu.user, cpu.system                     seconds (counters)
 *   balloon.current, balloon.maximum, balloon.swap_in, balloon.swap_out, balloon.unused,
 *   balloon.available, balloon.usable, balloon.rss, balloon.disk_caches      bytes
 *   balloon.major_fault, balloon.minor_fault           counts
 *   vcpu.current, vcpu.maximum                         counts
 *   vcpu.N.state                                       0 offline, 1 running, 2 blocked
 *   vcpu.N.time, vcpu.N.wait, vcpu.N.delay             seconds (counters)
 *   net.rx_bytes, net.rx_pkts, net.rx_errs, net.rx_drop,
 *   net.tx_bytes, net.tx_pkts, net.tx_errs, net.tx_drop            summed over interfaces (counters)
 *   net.DEV.rx_bytes, ...                              the same for one interface (DEV = target device, e.g. vnet0)
 *   block.rd_bytes, block.rd_reqs, block.wr_bytes, block.wr_reqs, block.fl_reqs    summed over disks (counters)
 *   block.rd_times, block.wr_times, block.fl_times     seconds, summed over disks (counters)
 *   block.allocation, block.capacity, block.physical   bytes, summed over disks
 *   block.DEV.rd_bytes, ...                            the same for one disk (DEV = target device, e.g. vda)
 *
 * A data point the hypervisor did not report (no balloon driver, inactive domain) is absent.
 */
import { kibToBytes, nsToSeconds } from './base-units'
import type { BlockStats, DomainStats, InterfaceStats, StatsGroup } from './hypervisor'

type Convert = (value: number) => number
const same: Convert = v => v

const NET: Array<[string, keyof InterfaceStats]> = [
  ['rx_bytes', 'rxBytes'], ['rx_pkts', 'rxPackets'], ['rx_errs', 'rxErrors'], ['rx_drop', 'rxDrops'],
  ['tx_bytes', 'txBytes'], ['tx_pkts', 'txPackets'], ['tx_errs', 'txErrors'], ['tx_drop', 'txDrops']
]

const BLOCK: Array<[string, keyof BlockStats, Convert]> = [
  ['rd_bytes', 'rdBytes', same], ['rd_reqs', 'rdReqs', same], ['rd_times', 'rdTimesNs', nsToSeconds],
  ['wr_bytes', 'wrBytes', same], ['wr_reqs', 'wrReqs', same], ['wr_times', 'wrTimesNs', nsToSeconds],
  ['fl_reqs', 'flReqs', same], ['fl_times', 'flTimesNs', nsToSeconds],
  ['allocation', 'allocation', same], ['capacity', 'capacity', same], ['physical', 'physical', same]
]

export function domainDataPoints (d: DomainStats): Map<string, number> {
  const out = new Map<string, number>()
  const set = (name: string, value: number | undefined, convert: Convert = same): void => {
    if (value !== undefined && Number.isFinite(value)) out.set(name, convert(value))
  }

  set('state.state', d.state.code)
  set('state.reason', d.state.reason)
  if (d.cpu !== undefined) {
    set('cpu.time', d.cpu.timeNs, nsToSeconds)
    set('cpu.user', d.cpu.userNs, nsToSeconds)
    set('cpu.system', d.cpu.systemNs, nsToSeconds)
  }
  const b = d.balloon
  if (b !== undefined) {
    set('balloon.current', b.currentKiB, kibToBytes)
    set('balloon.maximum', b.maximumKiB, kibToBytes)
    set('balloon.swap_in', b.swapInKiB, kibToBytes)
    set('balloon.swap_out', b.swapOutKiB, kibToBytes)
    set('balloon.major_fault', b.majorFault)
    set('balloon.minor_fault', b.minorFault)
    set('balloon.unused', b.unusedKiB, kibToBytes)
    set('balloon.available', b.availableKiB, kibToBytes)
    set('balloon.usable', b.usableKiB, kibToBytes)
    set('balloon.rss', b.rssKiB, kibToBytes)
    set('balloon.disk_caches', b.diskCachesKiB, kibToBytes)
  }
  if (d.vcpu !== undefined) {
    set('vcpu.current', d.vcpu.current)
    set('vcpu.maximum', d.vcpu.maximum)
    for (const v of d.vcpu.vcpus) {
      set(`vcpu.${v.index}.state`, v.state)
      set(`vcpu.${v.index}.time`, v.timeNs, nsToSeconds)
      set(`vcpu.${v.index}.wait`, v.waitNs, nsToSeconds)
      set(`vcpu.${v.index}.delay`, v.delayNs, nsToSeconds)
    }
  }
  for (const [key, field] of NET) {
    let sum = 0
    for (const n of d.interfaces) {
      const value = n[field] as number
      set(`net.${n.name}.${key}`, value)
      sum += value
    }
    if (d.interfaces.length > 0) set(`net.${key}`, sum)
  }
  for (const [key, field, convert] of BLOCK) {
    // Summed in libvirt's units and converted once: a sum of converted values would add their rounding.
    let sum: number | undefined
    for (const blk of d.blocks) {
      const value = blk[field] as number | undefined
      if (value === undefined) continue
      set(`block.${blk.name}.${key}`, value, convert)
      sum = (sum ?? 0) + value
    }
    set(`block.${key}`, sum, convert)
  }
  return out
}

/** The fixed (device-independent) data point names, for validating a specifier's `metric` at load. */
export const DATA_POINT_NAMES: readonly string[] = [
  'state.state', 'state.reason', 'cpu.time', 'cpu.user', 'cpu.system',
  ...['current', 'maximum', 'swap_in', 'swap_out', 'major_fault', 'minor_fault', 'unused', 'available', 'usable', 'rss', 'disk_caches'].map(k => `balloon.${k}`),
  'vcpu.current', 'vcpu.maximum',
  ...NET.map(([k]) => `net.${k}`),
  ...BLOCK.map(([k]) => `block.${k}`)
]

/** True for a fixed name or a per-device/per-vCPU one (`net.vnet0.rx_bytes`, `vcpu.0.time`). */
export function isDataPointName (name: string): boolean {
  if (DATA_POINT_NAMES.includes(name)) return true
  const m = /^(net|block|vcpu)\.([^.]+)\.([a-z_]+)$/.exec(name)
  if (m === null) return false
  if (m[1] === 'vcpu') return /^\d+$/.test(m[2]) && ['state', 'time', 'wait', 'delay'].includes(m[3])
  return DATA_POINT_NAMES.includes(`${m[1]}.${m[3]}`)
}

const GROUP_OF_PREFIX: Record<string, StatsGroup> = { state: 'state', cpu: 'cpu', balloon: 'balloon', vcpu: 'vcpu', net: 'interface', block: 'block' }

/** The statistics groups that hold these data points: what a poll for them needs to ask libvirt for. */
export function dataPointGroups (names: Iterable<string>): StatsGroup[] {
  const groups = new Set<StatsGroup>()
  for (const name of names) {
    const group = GROUP_OF_PREFIX[name.slice(0, name.indexOf('.'))]
    if (group !== undefined) groups.add(group)
  }
  return [...groups]
}
