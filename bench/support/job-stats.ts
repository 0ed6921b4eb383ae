/**
 * libvirt's statistics of a domain's completed job (`virsh domjobinfo --completed` at the libvirtd
 * the domain migrated to): where a live migration's time went, on the host's clock.
 */
import type { LibvirtHost } from '../../test/support/vm/libvirt-host'

export interface JobStats {
  elapsedMs?: number
  downtimeMs?: number
  setupMs?: number
  memoryIterations?: number
  memoryMiB?: number
  diskMiB?: number
  dirtyRatePagesPerS?: number
}

const FIELDS: Array<[keyof JobStats, string]> = [
  ['elapsedMs', 'Time elapsed'],
  ['downtimeMs', 'Total downtime'],
  ['setupMs', 'Setup time'],
  ['memoryIterations', 'Iteration'],
  ['memoryMiB', 'Memory processed'],
  ['diskMiB', 'File processed'],
  ['dirtyRatePagesPerS', 'Dirty rate'],
]

/** Reads `virsh domjobinfo NAME --completed`; the fields it does not print stay absent. */
export async function completedJobStats (host: LibvirtHost, name: string): Promise<JobStats> {
  return parseJobInfo(await host.virsh('domjobinfo', name, '--completed'))
}

function parseJobInfo (text: string): JobStats {
  const stats: JobStats = {}
  for (const [key, label] of FIELDS) {
    const m = new RegExp(`^${label}:\\s+([\\d.]+)\\s*(\\S*)`, 'm').exec(text)
    if (m === null) continue
    let value = Number(m[1])
    if (m[2] === 'GiB') value *= 1024
    if (m[2] === 'KiB') value /= 1024
    if (m[2] === 'B' || m[2] === 'bytes') value /= 1024 * 1024
    stats[key] = Math.round(value * 10) / 10
  }
  return stats
}
