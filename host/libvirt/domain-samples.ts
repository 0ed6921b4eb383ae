/**
 * Pure: one domain's statistics as Prometheus samples, in the libvirt_domain_* names operators
 * know from prometheus-libvirt-exporter (AlexZzz/kumina/inovex lineage), converted to base units:
 * nanoseconds → seconds, KiB → bytes. Every series has `domain` and `uuid` labels.
 */
import type { MetricFamily, Sample } from '../collector'
import { kibToBytes, nsToSeconds } from '../base-units'
import type { DomainStats } from '../hypervisor'

type FamilyDef = MetricFamily

function fam (name: string, type: 'counter' | 'gauge', help: string): FamilyDef {
  return { name, type, help }
}

export const F = {
  up: fam('libvirt_up', 'gauge', 'Whether the last collection from libvirt succeeded (1) or not (0).'),
  timedOut: fam('libvirt_domain_timed_out', 'gauge', 'The domain did not answer within the collection deadline; its other series are left out of this scrape.'),
  state: fam('libvirt_domain_info_state', 'gauge', 'Domain state: 0 no state, 1 running, 2 blocked, 3 paused, 4 shutting down, 5 shut off, 6 crashed, 7 pm-suspended.'),
  maxMemory: fam('libvirt_domain_info_maximum_memory_bytes', 'gauge', 'Maximum memory the domain may use, in bytes.'),
  memory: fam('libvirt_domain_info_memory_usage_bytes', 'gauge', 'Memory currently given to the domain (balloon size), in bytes.'),
  vcpus: fam('libvirt_domain_info_virtual_cpus', 'gauge', 'Number of virtual CPUs of the domain.'),
  cpuTime: fam('libvirt_domain_info_cpu_time_seconds_total', 'counter', 'CPU time used by the domain (all threads of its QEMU process), in seconds.'),
  vcpuState: fam('libvirt_domain_vcpu_state', 'gauge', 'vCPU state: 0 offline, 1 running, 2 blocked.'),
  vcpuTime: fam('libvirt_domain_vcpu_time_seconds_total', 'counter', 'CPU time used by the vCPU, in seconds.'),
  vcpuWait: fam('libvirt_domain_vcpu_wait_seconds_total', 'counter', 'Time the vCPU wanted to run but was not scheduled (wait_sum), in seconds.'),
  vcpuDelay: fam('libvirt_domain_vcpu_delay_seconds_total', 'counter', 'Time the vCPU thread was queued by the host scheduler instead of running (steal time), in seconds.'),
  memActual: fam('libvirt_domain_memory_stats_actual_balloon_bytes', 'gauge', 'Current balloon size, in bytes.'),
  memSwapIn: fam('libvirt_domain_memory_stats_swap_in_bytes', 'gauge', 'Memory the guest read from swap, in bytes.'),
  memSwapOut: fam('libvirt_domain_memory_stats_swap_out_bytes', 'gauge', 'Memory the guest wrote to swap, in bytes.'),
  memMajorFault: fam('libvirt_domain_memory_stats_major_fault_total', 'counter', 'Page faults in the guest that needed disk I/O.'),
  memMinorFault: fam('libvirt_domain_memory_stats_minor_fault_total', 'counter', 'Page faults in the guest served without disk I/O.'),
  memUnused: fam('libvirt_domain_memory_stats_unused_bytes', 'gauge', 'Memory left completely unused by the guest, in bytes.'),
  memAvailable: fam('libvirt_domain_memory_stats_available_bytes', 'gauge', 'Memory the guest sees as total, in bytes.'),
  memUsable: fam('libvirt_domain_memory_stats_usable_bytes', 'gauge', 'Memory the guest could use without swapping (MemAvailable), in bytes.'),
  memRss: fam('libvirt_domain_memory_stats_rss_bytes', 'gauge', 'Resident set size of the domain\'s QEMU process on the host, in bytes.'),
  memDiskCache: fam('libvirt_domain_memory_stats_disk_cache_bytes', 'gauge', 'Guest memory holding caches that can be reclaimed, in bytes.'),
  memUsedPercent: fam('libvirt_domain_memory_stats_used_percent', 'gauge', 'Memory used by the guest, as percent of available: (available - usable) / available * 100.'),
  blockRdBytes: fam('libvirt_domain_block_stats_read_bytes_total', 'counter', 'Bytes read from the block device.'),
  blockRdReqs: fam('libvirt_domain_block_stats_read_requests_total', 'counter', 'Read requests to the block device.'),
  blockRdTime: fam('libvirt_domain_block_stats_read_time_seconds_total', 'counter', 'Time spent on reads from the block device, in seconds.'),
  blockWrBytes: fam('libvirt_domain_block_stats_write_bytes_total', 'counter', 'Bytes written to the block device.'),
  blockWrReqs: fam('libvirt_domain_block_stats_write_requests_total', 'counter', 'Write requests to the block device.'),
  blockWrTime: fam('libvirt_domain_block_stats_write_time_seconds_total', 'counter', 'Time spent on writes to the block device, in seconds.'),
  blockFlReqs: fam('libvirt_domain_block_stats_flush_requests_total', 'counter', 'Flush requests to the block device.'),
  blockFlTime: fam('libvirt_domain_block_stats_flush_time_seconds_total', 'counter', 'Time spent on flushes of the block device, in seconds.'),
  blockAllocation: fam('libvirt_domain_block_stats_allocation', 'gauge', 'Offset of the highest written sector of the block device, in bytes.'),
  blockCapacity: fam('libvirt_domain_block_stats_capacity_bytes', 'gauge', 'Logical size of the block device, in bytes.'),
  blockPhysical: fam('libvirt_domain_block_stats_physicalsize_bytes', 'gauge', 'Size of the container of the block device\'s image on the host, in bytes.'),
  netRxBytes: fam('libvirt_domain_interface_stats_receive_bytes_total', 'counter', 'Bytes received on the network interface.'),
  netRxPackets: fam('libvirt_domain_interface_stats_receive_packets_total', 'counter', 'Packets received on the network interface.'),
  netRxErrors: fam('libvirt_domain_interface_stats_receive_errors_total', 'counter', 'Receive errors on the network interface.'),
  netRxDrops: fam('libvirt_domain_interface_stats_receive_drops_total', 'counter', 'Received packets dropped on the network interface.'),
  netTxBytes: fam('libvirt_domain_interface_stats_transmit_bytes_total', 'counter', 'Bytes transmitted on the network interface.'),
  netTxPackets: fam('libvirt_domain_interface_stats_transmit_packets_total', 'counter', 'Packets transmitted on the network interface.'),
  netTxErrors: fam('libvirt_domain_interface_stats_transmit_errors_total', 'counter', 'Transmit errors on the network interface.'),
  netTxDrops: fam('libvirt_domain_interface_stats_transmit_drops_total', 'counter', 'Transmitted packets dropped on the network interface.')
} as const

export const LIBVIRT_FAMILIES: readonly MetricFamily[] = Object.values(F)

/**
 * Appends one domain's samples to `out` (and returns it). All series of the domain share one
 * labels object, and all series of a device another: the exporter escapes each labels object once.
 */
export function domainSamples (d: DomainStats, out: Sample[] = []): Sample[] {
  const base = { domain: d.name, uuid: d.uuid }
  add(out, F.state, d.state.code, base)
  if (d.balloon !== undefined) {
    const b = d.balloon
    add(out, F.maxMemory, kibToBytes(b.maximumKiB), base)
    add(out, F.memory, kibToBytes(b.currentKiB), base)
    add(out, F.memActual, kibToBytes(b.currentKiB), base)
    add(out, F.memSwapIn, kib(b.swapInKiB), base)
    add(out, F.memSwapOut, kib(b.swapOutKiB), base)
    add(out, F.memMajorFault, b.majorFault, base)
    add(out, F.memMinorFault, b.minorFault, base)
    add(out, F.memUnused, kib(b.unusedKiB), base)
    add(out, F.memAvailable, kib(b.availableKiB), base)
    add(out, F.memUsable, kib(b.usableKiB), base)
    add(out, F.memRss, kib(b.rssKiB), base)
    add(out, F.memDiskCache, kib(b.diskCachesKiB), base)
    if (b.availableKiB !== undefined && b.usableKiB !== undefined && b.availableKiB > 0) {
      // One division last: the product of integers is exact, so the percent is rounded once.
      add(out, F.memUsedPercent, (b.availableKiB - b.usableKiB) * 100 / b.availableKiB, base)
    }
  }
  if (d.cpu !== undefined) add(out, F.cpuTime, nsToSeconds(d.cpu.timeNs), base)
  if (d.vcpu !== undefined) {
    add(out, F.vcpus, d.vcpu.current, base)
    for (const v of d.vcpu.vcpus) {
      const labels = { ...base, vcpu: String(v.index) }
      add(out, F.vcpuState, v.state, labels)
      add(out, F.vcpuTime, ns(v.timeNs), labels)
      add(out, F.vcpuWait, ns(v.waitNs), labels)
      add(out, F.vcpuDelay, ns(v.delayNs), labels)
    }
  }
  for (const blk of d.blocks) {
    const labels = { ...base, target_device: blk.name }
    add(out, F.blockRdBytes, blk.rdBytes, labels)
    add(out, F.blockRdReqs, blk.rdReqs, labels)
    add(out, F.blockRdTime, ns(blk.rdTimesNs), labels)
    add(out, F.blockWrBytes, blk.wrBytes, labels)
    add(out, F.blockWrReqs, blk.wrReqs, labels)
    add(out, F.blockWrTime, ns(blk.wrTimesNs), labels)
    add(out, F.blockFlReqs, blk.flReqs, labels)
    add(out, F.blockFlTime, ns(blk.flTimesNs), labels)
    add(out, F.blockAllocation, blk.allocation, labels)
    add(out, F.blockCapacity, blk.capacity, labels)
    add(out, F.blockPhysical, blk.physical, labels)
  }
  for (const n of d.interfaces) {
    const labels = { ...base, target_device: n.name }
    add(out, F.netRxBytes, n.rxBytes, labels)
    add(out, F.netRxPackets, n.rxPackets, labels)
    add(out, F.netRxErrors, n.rxErrors, labels)
    add(out, F.netRxDrops, n.rxDrops, labels)
    add(out, F.netTxBytes, n.txBytes, labels)
    add(out, F.netTxPackets, n.txPackets, labels)
    add(out, F.netTxErrors, n.txErrors, labels)
    add(out, F.netTxDrops, n.txDrops, labels)
  }
  return out
}

function add (out: Sample[], f: FamilyDef, value: number | undefined, labels: Record<string, string>): void {
  if (value === undefined || !Number.isFinite(value)) return
  out.push({ name: f.name, help: f.help, type: f.type, labels, value })
}

function ns (v: number | undefined): number | undefined { return v === undefined ? undefined : nsToSeconds(v) }
function kib (v: number | undefined): number | undefined { return v === undefined ? undefined : kibToBytes(v) }
