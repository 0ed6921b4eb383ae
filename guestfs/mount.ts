import { mkdir } from 'node:fs/promises'
import { adaptOperations } from './fuse/adapter'
import { startFeed, type FeedEndpoint } from './feed/feed-endpoint'
import { mountFuse, type FuseMount } from './fuse/guestfs-fuse'
import { recoverStaleMount } from './fuse/stale-mount'
import { createGuestfsState, type GuestfsState } from './fs/guestfs-state'
import { operations } from './fs/operations'
import { KpiStore } from './store/kpi-store'
import type { SyncMode } from './store/schema'

export interface GuestfsOptions {
  mountpoint: string
  dbFile: string
  sync?: SyncMode
  /** Serve the KPI feed: `unix:PATH` or `dev:PATH` (a virtio-serial port). */
  feed?: string
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
  const store = KpiStore.open(options.dbFile, { sync: options.sync, log })
  const state = createGuestfsState(store, log)
  let feed: FeedEndpoint | undefined
  let fuse: FuseMount
  try {
    if (options.feed) feed = await startFeed(options.feed, store, log)
    fuse = await mountFuse(options.mountpoint, adaptOperations(operations, state))
  } catch (err) {
    await feed?.close()
    await store.close()
    throw err
  }
  return {
    state,
    async close () {
      await fuse.unmount()
      await feed?.close()
      await store.close()
    },
  }
}
