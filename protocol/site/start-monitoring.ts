import type { Server } from 'node:http'
import { PrimaryStore } from '../primary/primary-store'
import { startPrimaryViews, type RunningPrimaryViews } from '../primary/primary-views'
import type { Delivery } from '../relay/delivery'
import { MemoryReplayCache } from '../envelope/replay-cache'
import { decodeKey } from '../crypto/key-files'
import { createIngestServer } from '../relay/ingest-server'
import type { HostVerifier } from '../relay/host-signature'
import { openMonitoringDb } from '../relay/monitoring-db'
import { hostSender, LOCAL, MonitoringRelay } from '../relay/monitoring-relay'
import { registerRelayMetrics } from '../relay/relay-metrics'
import { ProtocolError } from '../errors'
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
    observe: monitoring.observe,
    maxClockSkewMs: monitoring.maxClockSkewMs,
  })
  let server: Server | undefined
  let views: RunningPrimaryViews | undefined
  try {
    views = await startPrimaryViews({
      config: monitoring, keysDir: keys, db, onStored: (listener) => relay.onStored(listener),
      forceMigration: (vmId) => runController(site, vmId, []), log: site.log, connectionLimits: limits,
      addMetrics: (registry) => registerRelayMetrics(registry, relay),
    })
    if (monitoring.ingest !== undefined) {
      server = createIngestServer({ relay, log: site.log, hosts: monitoring.ingestAuth === 'none' ? undefined : hostVerifier(site, limits.timestampWindowMs) })
      if (monitoring.ingestAuth === 'none') site.log({ event: 'config-warning', detail: 'monitoring.ingestAuth is "none": any process that reaches the ingest may deliver for any VM of this site' })
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
  const nats = monitoring.nats && new NatsIngest({ siteId: site.self, config: monitoring.nats, accept: (d, host) => relay.accept(d, natsSender(host, monitoring.ingestAuth)), log: site.log })
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
 * The ingest's check of host signatures: keys from `hosts[].publicKey`. Nonces are remembered in
 * memory: a batch replayed after a restart is harmless, the relay stores each delivery id once.
 */
function hostVerifier (site: SiteParts, windowMs: number): HostVerifier {
  const keys = new Map(site.config.hosts.flatMap((h) => h.publicKey === undefined ? [] : [[h.id, decodeKey(`hosts[${h.id}].publicKey`, h.publicKey)] as const]))
  return { publicKey: (host) => keys.get(host), windowMs, replay: new MemoryReplayCache() }
}

/** A subject that names a host delivers as that host; one that names none only while ingest authentication is off. */
function natsSender (host: string | undefined, auth: 'host-key' | 'none'): string {
  if (host !== undefined) return hostSender(host)
  if (auth === 'none') return LOCAL
  throw new ProtocolError('bad-request', 'the subject names no host: hosts publish to <prefix>.<site>.<host>.<vm>')
}
