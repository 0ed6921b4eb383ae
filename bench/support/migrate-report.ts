/**
 * bench/migrate's figures: the medians per disk size and path, the ratios the targets are stated in,
 * and the table it prints.
 */
import type { ProbeSummary } from './console-probe'
import type { JobStats } from './job-stats'

export type Mode = 'fedvm' | 'direct'
export interface Migration {
  diskMiB: number
  mode: Mode
  from: 'A' | 'B'
  /** The whole command (`fedvm migrate`, `virsh migrate`), host clock. */
  wallMs: number
  /** fedvm's Controller's own duration and libvirt downtime as `fedvm migrate` answers them. */
  controllerMs?: number
  answeredDowntimeMs?: number
  /**
   * fedvm's phases from the site daemons' logs (live-prepared, live-performed, live-finished, live-transfer), ms each;
   * handover: from Perform's return at the Source to Finish's start at the Destination.
   */
  phases?: Record<string, number>
  /** Every event the site daemons logged during a fedvm migration, ms after the command started (where fedvm's time goes). */
  timeline?: Array<{ site: string, event: string, atMs: number, [duration: string]: number | string }>
  /** CPU time each site daemon (its proxies, roles and the virsh it ran) used during the migration, ms. */
  siteCpuMs?: Record<string, number>
  libvirt: JobStats
  probe: ProbeSummary
  /** The machine's dirty page cache during the migration (both libvirtds share this machine's). */
  dirty: { maxDirtyMiB: number, lastDirtyMiB: number }
  load1: number
}

export interface Report {
  medians: Record<string, Record<Mode, Record<string, number | undefined>>>
  ratios: Record<string, number | undefined>
  targets: Record<string, { value: number | undefined, target: number, met: boolean | undefined }>
}

export function summarise (all: Migration[], diskMiB: number, factor: number): Report {
  const pick = (size: number, mode: Mode, f: (m: Migration) => number | undefined): number | undefined =>
    median(all.filter((m) => m.diskMiB === size && m.mode === mode).map(f).filter((v): v is number => v !== undefined))
  const medians: Report['medians'] = {}
  for (const size of [diskMiB, diskMiB * factor]) {
    const row = (mode: Mode): Record<string, number | undefined> => ({
      // fedvm's Destination keeps no completed job at its libvirtd: libvirt's figure from Perform's cookie, as `fedvm migrate` answers it.
      libvirtDowntimeMs: pick(size, mode, (m) => m.libvirt.downtimeMs ?? m.answeredDowntimeMs),
      probeGapMs: pick(size, mode, (m) => m.probe.switchoverGapMs),
      longestGapMs: pick(size, mode, (m) => m.probe.maxGapMs),
      wallMs: pick(size, mode, (m) => m.wallMs),
      libvirtElapsedMs: pick(size, mode, (m) => m.libvirt.elapsedMs),
      setupMs: pick(size, mode, (m) => m.libvirt.setupMs),
      memoryIterations: pick(size, mode, (m) => m.libvirt.memoryIterations),
      performMs: pick(size, mode, (m) => m.phases?.performed),
      handoverMs: pick(size, mode, (m) => m.phases?.handover),
      maxDirtyMiB: pick(size, mode, (m) => m.dirty.maxDirtyMiB),
      sitesCpuMs: pick(size, mode, (m) => m.siteCpuMs === undefined ? undefined : Object.values(m.siteCpuMs).reduce((a, c) => a + c, 0)),
      linesLost: all.filter((m) => m.diskMiB === size && m.mode === mode).reduce((n, m) => n + m.probe.lost, 0)
    })
    medians[`${size}MiB`] = { fedvm: row('fedvm'), direct: row('direct') }
  }
  const small = medians[`${diskMiB}MiB`]
  const large = medians[`${diskMiB * factor}MiB`]
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100
  const ratios = {
    downtimeToDirect: ratio(small.fedvm.libvirtDowntimeMs, small.direct.libvirtDowntimeMs),
    probeGapToDirect: ratio(small.fedvm.probeGapMs, small.direct.probeGapMs),
    largeDiskDowntime: ratio(large.fedvm.libvirtDowntimeMs, small.fedvm.libvirtDowntimeMs),
    largeDiskProbeGap: ratio(large.fedvm.probeGapMs, small.fedvm.probeGapMs),
    wallToDirect: ratio(small.fedvm.wallMs, small.direct.wallMs),
    largeDiskWallToDirect: ratio(large.fedvm.wallMs, large.direct.wallMs)
  }
  const target = (value: number | undefined, limit: number): { value: number | undefined, target: number, met: boolean | undefined } => ({ value, target: limit, met: value === undefined ? undefined : value <= limit })
  return {
    medians,
    ratios,
    targets: {
      'downtime ms (libvirt) ≤ 300': target(small.fedvm.libvirtDowntimeMs, 300),
      'downtime ms (console probe, upper bound) ≤ 300': target(small.fedvm.probeGapMs, 300),
      'downtime / direct (libvirt) ≤ 2': target(ratios.downtimeToDirect, 2),
      'downtime / direct (probe) ≤ 2': target(ratios.probeGapToDirect, 2),
      [`downtime ${factor}x disk / 1x (libvirt) ≤ 1.2`]: target(ratios.largeDiskDowntime, 1.2),
      [`downtime ${factor}x disk / 1x (probe) ≤ 1.2`]: target(ratios.largeDiskProbeGap, 1.2),
      'wall / direct ≤ 1.5 (moonshot 1.2)': target(ratios.wallToDirect, 1.5),
      [`wall / direct, ${factor}x disk ≤ 1.5`]: target(ratios.largeDiskWallToDirect, 1.5)
    }
  }
}

export function printTable (r: Report): void {
  const cell = (v: number | undefined): string => (v === undefined ? '-' : String(v)).padStart(9)
  console.log(`\n${'disk'.padEnd(8)}${'mode'.padEnd(8)}${['downtime', 'probe', 'longest', 'wall', 'perform', 'handover', 'elapsed', 'setup', 'iters', 'dirtyMiB', 'siteCPU', 'lost'].map((h) => h.padStart(9)).join('')}`)
  for (const [size, row] of Object.entries(r.medians)) {
    for (const mode of ['fedvm', 'direct'] as const) {
      const v = row[mode]
      console.log(`${size.padEnd(8)}${mode.padEnd(8)}${[v.libvirtDowntimeMs, v.probeGapMs, v.longestGapMs, v.wallMs, v.performMs, v.handoverMs, v.libvirtElapsedMs, v.setupMs, v.memoryIterations, v.maxDirtyMiB, v.sitesCpuMs, v.linesLost].map(cell).join('')}`)
    }
  }
  console.log('(medians, ms. downtime: libvirt\'s; probe: Source console\'s last line to Destination console\'s first on the host clock, an upper bound;\n' +
    ' longest: longest gap between lines in the window, either console; perform: fedvm Source\'s Perform;\n handover: from Perform\'s return at the Source to Finish\'s start at the Destination; elapsed, setup, iters: libvirt\'s completed job at the Destination;\n' +
    ' dirtyMiB: the most dirty page cache seen on the machine during the migration;\n' +
    ' siteCPU: both site daemons\' CPU time during the migration, proxies included)\n')
  for (const [name, t] of Object.entries(r.targets)) console.log(`${t.met === undefined ? '?' : t.met ? 'met  ' : 'UNMET'} ${name}: ${String(t.value)}`)
}

function median (values: number[]): number | undefined {
  if (values.length === 0) return undefined
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
