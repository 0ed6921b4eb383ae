import type { Server } from 'node:http'
import { PrimaryStore } from '../primary/primary-store'
import { startPrimaryViews, type RunningPrimaryViews } from '../primary/primary-views'
import type { Delivery } from '../relay/delivery'
import { createIngestServer } from '../relay/ingest-server'
import { openMonitoringDb } from '../relay/monitoring-db'
import { LOCAL, MonitoringRelay } from '../relay/monitoring-relay'
import { NatsIngest } from '../relay/nats-ingest'
import { runController } from '../roles/controller'
import type { SiteParts } from './site-parts'

/** Room left in a signed request for everything but the deliveries (op, hops, signature). */
const ENVELOPE_MARGIN_BYTES = 4096

export interface RunningMonitoring {
  relay: MonitoringRelay
  /** The local ingest's address (host:port) when `monitoring.ingest` is set. */
  ingest?: string
  /** Takes deliveries from the NATS bus when `monitoring.nats` is set. */
  nats?: NatsIngest
  close: () => Promise<void>
}

/**
 * Opens monitoring.db, starts the relay (sends what a previous run left queued), the primary site's
 * views on its store and, when `monitoring.ingest` is set, the local ingest listener.
 */
export async function startMonitoring (site: SiteParts, listen: (server: Server, address: string) => Promise<unknown>): Promise<RunningMonitoring> {
  const { monitoring, limits, stateDir, keys } = site.config
  const db = openMonitoringDb(stateDir)
  const relay = new MonitoringRelay({
    siteId: site.self,
    db,
    state: site.state,
    primary: new PrimaryStore(db),
    send: (to, deliveries: Delivery[]) => site.partners.sendAsOrigin(to, 'monitoring-deliveries', { deliveries }),
    log: site.log,
    lingerMs: monitoring.forwardLingerMs,
    tombstoneMs: monitoring.tombstoneMs,
    maxBatchBytes: limits.maxRequestBytes - ENVELOPE_MARGIN_BYTES,
  })
  let server: Server | undefined
  let views: RunningPrimaryViews | undefined
  try {
    views = await startPrimaryViews({
      config: monitoring, keysDir: keys, db, onStored: (listener) => relay.onStored(listener),
      forceMigration: (vmId) => runController(site, vmId, []), log: site.log,
    })
    if (monitoring.ingest !== undefined) {
      server = createIngestServer(relay, site.log)
      await listen(server, monitoring.ingest)
    }
  } catch (err) {
    await views?.close()
    db.close()
    throw err
  }
  relay.start()
  // Former routes past their grace period are forgotten (checked once a minute; unref'd: never keeps the process up).
  const prune = setInterval(() => site.state.dropFormerLocations(Date.now() - monitoring.tombstoneMs), 60_000)
  prune.unref()
  const nats = monitoring.nats && new NatsIngest({ siteId: site.self, config: monitoring.nats, accept: (d) => relay.accept(d, LOCAL), log: site.log })
  nats?.start()
  return {
    relay,
    ingest: monitoring.ingest,
    nats,
    close: async () => {
      clearInterval(prune)
      if (server !== undefined) {
        const closing = new Promise<void>((resolve) => server!.close(() => resolve()))
        server.closeAllConnections()
        await closing
      }
      await nats?.stop()
      await views?.close()
      await relay.close()
      db.close()
    },
  }
}
