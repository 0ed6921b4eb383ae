import { mkdir } from 'node:fs/promises'
import { adaptOperations } from './fuse/adapter'
import { mountFuse } from './fuse/guestfs-fuse'
import { recoverStaleMount } from './fuse/stale-mount'
import { createGuestfsState, type GuestfsState } from './fs/guestfs-state'
import { operations } from './fs/operations'
import { KpiStore } from './store/kpi-store'
import type { SyncMode } from './store/schema'

export interface GuestfsOptions {
  mountpoint: string
  dbFile: string
  sync?: SyncMode
  log?: (line: string) => void
}

export interface MountedGuestfs {
  readonly state: GuestfsState
  /** Unmounts, then commits anything queued and closes the database. */
  close (): Promise<void>
}

export async function mountGuestfs (options: GuestfsOptions): Promise<MountedGuestfs> {
  const log = options.log ?? ((line: string) => process.stderr.write(`guestfs: ${line}\n`))
  await recoverStaleMount(options.mountpoint, log)
  await mkdir(options.mountpoint, { recursive: true })
  const store = KpiStore.open(options.dbFile, { sync: options.sync, backgroundCheckpoints: true, log })
  const state = createGuestfsState(store, log)
  let fuse
  try {
    fuse = await mountFuse(options.mountpoint, adaptOperations(operations, state))
  } catch (err) {
    await store.close()
    throw err
  }
  const mounted = fuse
  return {
    state,
    async close () {
      await mounted.unmount()
      await store.close()
    },
  }
}
