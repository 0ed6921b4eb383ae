import { readFileSync } from 'node:fs'

/**
 * A named, test-only hook for Jepsen-style fault tests: a daemon started with
 * `FEDVM_FAULT_POINT=controller:decided` (a comma-separated list of names) kills itself with SIGKILL
 * when it reaches that step of a migration, as a crash there would. With
 * `FEDVM_FAULT_POINT_FILE=PATH` the names are read from that file at each step instead, so a test arms
 * a running daemon without restarting it. Unset, every call is a no-op.
 *
 * The points, one per protocol step and role:
 * - controller:prepared, controller:received, controller:verified, controller:decided, controller:destination-committed
 * - source:prepared, source:verified, source:releasing
 * - destination:received, destination:committing, destination:committed
 * - intermediary:initiate, intermediary:verification, intermediary:commit, intermediary:confirm
 * - live migration only: source:performing
 */
export const FAULT_POINTS = [
  'controller:prepared', 'controller:received', 'controller:verified', 'controller:decided', 'controller:destination-committed',
  'source:prepared', 'source:verified', 'source:releasing',
  'destination:received', 'destination:committing', 'destination:committed',
  'intermediary:initiate', 'intermediary:verification', 'intermediary:commit', 'intermediary:confirm',
] as const

/** Points only a live migration reaches (source:performing: Perform runs, libvirt reported its job's first progress). */
export const LIVE_FAULT_POINTS = ['source:performing'] as const

export type FaultPoint = typeof FAULT_POINTS[number] | typeof LIVE_FAULT_POINTS[number]

const fixed = names(process.env.FEDVM_FAULT_POINT ?? '')
const file = process.env.FEDVM_FAULT_POINT_FILE

export function faultPoint (name: FaultPoint): void {
  if (fixed.has(name) || (file !== undefined && armedInFile(file).has(name))) process.kill(process.pid, 'SIGKILL')
}

function armedInFile (path: string): Set<string> {
  try {
    return names(readFileSync(path, 'utf8'))
  } catch {
    // No file: nothing armed.
    return new Set()
  }
}

function names (text: string): Set<string> {
  return new Set(text.split(/[,\s]+/).filter((name) => name !== ''))
}
