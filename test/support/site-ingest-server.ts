import { mkdtemp, rm } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { PrimaryStore } from '../../protocol/primary/primary-store'
import type { HostVerifier } from '../../protocol/relay/host-signature'
import { createIngestServer, INGEST_PATH } from '../../protocol/relay/ingest-server'
import { openMonitoringDb } from '../../protocol/relay/monitoring-db'
import { MonitoringRelay } from '../../protocol/relay/monitoring-relay'
import type { LocationRecord } from '../../protocol/roles/records'
import type { Teardownable } from './teardownable'

export interface SiteIngestServerOptions {
  /** The site's location records, played by the test: where each VM runs (read at every batch). */
  location: (vm: string) => Pick<LocationRecord, 'kind' | 'target' | 'upstream'> | undefined
  /** Checks each batch's host signature; left out, the site takes unsigned batches (authentication off). */
  hosts?: HostVerifier
  /** What the ingest server logs (its refusals, for one); the relay behind it logs nowhere. */
  log?: (event: Record<string, unknown>) => void
  maxClockSkewMs?: number
}

export interface SiteIngestServer {
  /** The ingest's URL on loopback (POST deliveries here). */
  url: string
  server: Server
  db: Database.Database
  /** The ids the primary store holds, in the order they were stored. */
  stored: () => string[]
}

/**
 * A site's real monitoring ingest on loopback: the relay on a real monitoring.db in a temporary
 * folder, the primary store, and the HTTP server agents POST to. A VM whose record names no
 * upstream has this site as its primary: what it accepts for it is stored at once. Everything goes
 * in the test's teardown.
 */
export async function startSiteIngestServer (t: Teardownable, options: SiteIngestServerOptions): Promise<SiteIngestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-site-ingest-'))
  const db = openMonitoringDb(dir)
  const relay = new MonitoringRelay({
    siteId: 'site-a',
    db,
    state: {
      location: (vm) => {
        const where = options.location(vm)
        return where && { vmId: vm, descriptor: null, version: 'v', ...where }
      },
      formerLocations: () => [],
    },
    primary: new PrimaryStore(db),
    send: async () => {},
    log: () => {},
    lingerMs: 1,
    tombstoneMs: 60_000,
    maxBatchBytes: 64 * 1024,
    maxClockSkewMs: options.maxClockSkewMs,
  })
  const server = createIngestServer({ relay, log: options.log ?? (() => {}), hosts: options.hosts })
  t.teardown(async () => {
    await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
    await relay.close()
    db.close()
    await rm(dir, { recursive: true, force: true })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${INGEST_PATH}`,
    server,
    db,
    stored: () => db.prepare('SELECT "id" FROM "deliveries" ORDER BY rowid').pluck().all() as string[],
  }
}
