/** Statistics of a plausible running domain, for unit tests (units as libvirt reports them). */
import type { DomainStats } from '../../../host/hypervisor'

export function runningStats (name: string, uuid: string, cpuSeconds = 12.5): DomainStats {
  return {
    name,
    uuid,
    state: { code: 1, reason: 1 },
    cpu: { timeNs: cpuSeconds * 1e9, userNs: 10e9, systemNs: 2.5e9 },
    balloon: { currentKiB: 131072, maximumKiB: 262144, rssKiB: 250000, usableKiB: 60000, availableKiB: 80000, unusedKiB: 50000, diskCachesKiB: 2000, swapInKiB: 0, swapOutKiB: 0, majorFault: 1, minorFault: 100 },
    vcpu: { current: 1, maximum: 2, vcpus: [{ index: 0, state: 1, timeNs: 9e9, waitNs: 1e6, delayNs: 2e9 }] },
    interfaces: [{ name: 'vnet0', rxBytes: 1000, rxPackets: 10, rxErrors: 0, rxDrops: 0, txBytes: 2000, txPackets: 20, txErrors: 0, txDrops: 1 }],
    blocks: [{ name: 'vda', path: '/var/lib/vm.img', rdReqs: 5, rdBytes: 4096, rdTimesNs: 3e6, wrReqs: 7, wrBytes: 8192, wrTimesNs: 4e6, flReqs: 2, flTimesNs: 5e6, allocation: 65536, capacity: 8388608, physical: 65536 }]
  }
}
