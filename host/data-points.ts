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
import type { BlockStats, DomainStats, InterfaceStats } from './hypervisor'

const NS = 1e-9
const KIB = 1024

const NET: Array<[string, keyof InterfaceStats]> = [
  ['rx_bytes', 'rxBytes'], ['rx_pkts', 'rxPackets'], ['rx_errs', 'rxErrors'], ['rx_drop', 'rxDrops'],
  ['tx_bytes', 'txBytes'], ['tx_pkts', 'txPackets'], ['tx_errs', 'txErrors'], ['tx_drop', 'txDrops']
]

const BLOCK: Array<[string, keyof BlockStats, number]> = [
  ['rd_bytes', 'rdBytes', 1], ['rd_reqs', 'rdReqs', 1], ['rd_times', 'rdTimesNs', NS],
  ['wr_bytes', 'wrBytes', 1], ['wr_reqs', 'wrReqs', 1], ['wr_times', 'wrTimesNs', NS],
  ['fl_reqs', 'flReqs', 1], ['fl_times', 'flTimesNs', NS],
  ['allocation', 'allocation', 1], ['capacity', 'capacity', 1], ['physical', 'physical', 1]
]

export function domainDataPoints (d: DomainStats): Map<string, number> {
  const out = new Map<string, number>()
  const set = (name: string, value: number | undefined, scale = 1): void => {
    if (value !== undefined && Number.isFinite(value)) out.set(name, value * scale)
  }
  const addTo = (name: string, value: number): void => { out.set(name, (out.get(name) ?? 0) + value) }

  set('state.state', d.state.code)
  set('state.reason', d.state.reason)
  if (d.cpu !== undefined) {
    set('cpu.time', d.cpu.timeNs, NS)
    set('cpu.user', d.cpu.userNs, NS)
    set('cpu.system', d.cpu.systemNs, NS)
  }
  const b = d.balloon
  if (b !== undefined) {
    set('balloon.current', b.currentKiB, KIB)
    set('balloon.maximum', b.maximumKiB, KIB)
    set('balloon.swap_in', b.swapInKiB, KIB)
    set('balloon.swap_out', b.swapOutKiB, KIB)
    set('balloon.major_fault', b.majorFault)
    set('balloon.minor_fault', b.minorFault)
    set('balloon.unused', b.unusedKiB, KIB)
    set('balloon.available', b.availableKiB, KIB)
    set('balloon.usable', b.usableKiB, KIB)
    set('balloon.rss', b.rssKiB, KIB)
    set('balloon.disk_caches', b.diskCachesKiB, KIB)
  }
  if (d.vcpu !== undefined) {
    set('vcpu.current', d.vcpu.current)
    set('vcpu.maximum', d.vcpu.maximum)
    for (const v of d.vcpu.vcpus) {
      set(`vcpu.${v.index}.state`, v.state)
      set(`vcpu.${v.index}.time`, v.timeNs, NS)
      set(`vcpu.${v.index}.wait`, v.waitNs, NS)
      set(`vcpu.${v.index}.delay`, v.delayNs, NS)
    }
  }
  for (const n of d.interfaces) {
    for (const [key, field] of NET) {
      const value = n[field] as number
      set(`net.${n.name}.${key}`, value)
      addTo(`net.${key}`, value)
    }
  }
  for (const blk of d.blocks) {
    for (const [key, field, scale] of BLOCK) {
      const value = blk[field] as number | undefined
      if (value === undefined) continue
      set(`block.${blk.name}.${key}`, value, scale)
      addTo(`block.${key}`, value * scale)
    }
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
