/**
 * The downtime limit the live-migration tests give their hosts when the guest runs under TCG: the one
 * at which QEMU switches a TCG guest over after its first memory pass even on a loaded machine
 * (TCG_SAFE_DOWNTIME_MS in host/libvirt/live-source.ts, with the measurement). On a full test run the
 * product default of 300 ms makes QEMU do more passes, after which a TCG guest often arrives corrupt.
 * These tests are about what fedvm does around the switchover, not about QEMU's TCG; the benchmark
 * (bench/migrate.ts) measures the default. A KVM guest keeps the default.
 */
import { TCG_SAFE_DOWNTIME_MS } from '../../../host/libvirt/live-source'

/** The host settings a live-migration test adds for a guest of this domain type. */
export function liveTestLimits (type: 'qemu' | 'kvm'): { maxDowntimeMs?: number } {
  return type === 'kvm' ? {} : { maxDowntimeMs: TCG_SAFE_DOWNTIME_MS }
}
