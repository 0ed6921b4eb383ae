import type { Server } from 'node:http'
import { signNewRequest } from '../envelope/sign-request'
import { callSite } from './partner-client'
import type { SiteContext } from './site-context'
import type { Delivery } from '../relay/delivery'
import { createIngestServer } from '../relay/ingest-server'
import { openMonitoringDb } from '../relay/monitoring-db'
import { LOCAL, MonitoringRelay } from '../relay/monitoring-relay'
import { NatsIngest } from '../relay/nats-ingest'
import { startPrimaryViews, type RunningPrimaryViews } from '../primary/primary-views'

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
 * Opens monitoring.db, starts the relay (sends what a previous run left queued) and, when
 * `monitoring.ingest` is set, the local ingest listener; sets `site.monitoring`.
 */
export async function startMonitoring (site: SiteContext, listen: (server: Server, address: string) => Promise<unknown>): Promise<RunningMonitoring> {
  const { monitoring, limits, stateDir } = site.config
  const db = openMonitoringDb(stateDir)
  const relay = new MonitoringRelay({
    siteId: site.id,
    db,
    state: site.state,
    send: (to, deliveries) => sendDeliveries(site, to, deliveries),
    log: site.log,
    lingerMs: monitoring.forwardLingerMs,
    tombstoneMs: monitoring.tombstoneMs,
    maxBatchBytes: limits.maxRequestBytes - ENVELOPE_MARGIN_BYTES,
  })
  site.monitoring = relay
  let server: Server | undefined
  let views: RunningPrimaryViews | undefined
  try {
    views = await startPrimaryViews(site, relay)
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
  const nats = monitoring.nats && new NatsIngest({ siteId: site.id, config: monitoring.nats, accept: (d) => relay.accept(d, LOCAL), log: site.log })
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

/**
 * One signed request to the next hop, with this site as its origin (never a forward: the receiver
 * learns only its neighbour). Unlike SiteContext.send it logs nothing per batch (hundreds a second).
 */
async function sendDeliveries (site: SiteContext, to: string, deliveries: Delivery[]): Promise<unknown> {
  const { limits } = site.config
  const request = await signNewRequest({ id: site.id, secretKey: site.signing.secretKey }, to, 'monitoring-deliveries', { deliveries }, limits.hopBudget)
  return callSite(site.endpoint(to), site.id, request, { windowMs: limits.timestampWindowMs, timeoutMs: limits.requestTimeoutMs })
}
