import type { KpiStore } from '../store/kpi-store'
import { OpenFiles } from './open-files'
import { StagingArea } from './staging-area'

/** Everything the filesystem operations share: the store, the open handles and the staged files. */
export interface GuestfsState {
  readonly store: KpiStore
  readonly openFiles: OpenFiles
  readonly staging: StagingArea
  readonly log: (line: string) => void
}

export function createGuestfsState (store: KpiStore, log: (line: string) => void): GuestfsState {
  return { store, openFiles: new OpenFiles(), staging: new StagingArea(), log }
}
