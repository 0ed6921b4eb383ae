import type Database from 'better-sqlite3'
import type { Server } from 'node:http'
import type { Registry } from 'prom-client'
import type { Log } from '../log'
import type { Delivery } from '../relay/delivery'
import type { Rule } from './rules/rules-config'
import { PrimaryLatest } from './primary-latest'
import { createPrimaryRegistry } from './primary-metrics'
import { startPrimaryMetricsServer } from './primary-metrics-server'
import { loadWebConfig } from '../http/web-config'
import type { ConnectionLimits } from '../http/connection-guard'
import { latestDeliveries } from './primary-queries'
import type { RemoteWriteConfig } from './remote-write/remote-write-config'
import { RemoteWriter } from './remote-write/remote-writer'
import { RuleFirings } from './rules/rule-firings'
import { RuleRunner } from './rules/rule-runner'
import { SealedOpener } from './sealed-opener'

export interface RunningPrimaryViews {
  /** Where /metrics listens, when `monitoring.metricsListen` is set. */
  metrics?: string
  rules?: RuleRunner
  /** The remote-write sender, when `monitoring.remoteWrite` is set. */
  remoteWrite?: RemoteWriter
  close: () => Promise<void>
}

/**
 * The primary site's views on its store: `/metrics` with the newest value of each VM
 * metric, and the SLA rules, both fed by the relay's onStored. Subscribed before any ingest listens, so
 * no stored delivery passes them by.
 */
export interface PrimaryViewsDeps {
  config: { metricsListen?: string, metricsSealed: boolean, metricsWebConfig?: string, rules: Rule[], maxClockSkewMs: number, remoteWrite?: RemoteWriteConfig }
  /** The site's keys folder: seal.key opens sealed values. */
  keysDir: string
  /** The primary store's database (primary-store.ts). */
  db: Database.Database
  /** Subscribes to deliveries newly stored in the primary store. */
  onStored: (listener: (fresh: Delivery[]) => void) => void
  /** What a rule's `forced-migration` action runs: the Controller for the VM. */
  forceMigration: (vmId: string) => Promise<unknown>
  log: Log
  /** What the /metrics listener allows an idle or half-open connection (the site's limits). */
  connectionLimits?: ConnectionLimits
  /** Adds the site's other families to /metrics (the relay's: relay/relay-metrics.ts). */
  addMetrics?: (registry: Registry) => void
}

export async function startPrimaryViews (deps: PrimaryViewsDeps): Promise<RunningPrimaryViews> {
  const { metricsListen, metricsSealed, rules } = deps.config
  const { db, onStored, log } = deps
  if (metricsListen === undefined && rules.length === 0 && deps.config.remoteWrite === undefined) return { close: async () => {} }
  // Read before anything starts: a bad web config stops the site at start, naming its key.
  const web = deps.config.metricsWebConfig === undefined ? undefined : await loadWebConfig(deps.config.metricsWebConfig)
  const opener = await SealedOpener.load(deps.keysDir)
  if (!opener.hasKey) log({ event: 'config-warning', detail: `${opener.keyFile} is missing: sealed deliveries cannot be read by rules or /metrics` })
  let runner: RuleRunner | undefined
  if (rules.length > 0) {
    const firings = new RuleFirings(db)
    runner = new RuleRunner({ rules, opener, log, firings, forceMigration: deps.forceMigration, clock: { now: Date.now, maxClockSkewMs: deps.config.maxClockSkewMs } })
    onStored(runner.handle)
  }
  let server: Server | undefined
  if (metricsListen !== undefined) {
    const latest = new PrimaryLatest()
    onStored(latest.update)
    latest.update(latestDeliveries(db))
    const registry = createPrimaryRegistry({ latest, opener, includeSealed: metricsSealed, log })
    deps.addMetrics?.(registry)
    server = await startPrimaryMetricsServer(registry, metricsListen, { web, limits: deps.connectionLimits })
  }
  let remoteWrite: RemoteWriter | undefined
  if (deps.config.remoteWrite !== undefined) {
    remoteWrite = new RemoteWriter({ ...deps.config.remoteWrite, db, opener, includeSealed: metricsSealed, log })
    onStored(remoteWrite.kick)
    remoteWrite.kick() // what an earlier run stored and did not get acknowledged
  }
  return {
    metrics: metricsListen,
    rules: runner,
    remoteWrite,
    close: async () => {
      await remoteWrite?.close()
      if (server !== undefined) {
        const closing = new Promise<void>((resolve) => server!.close(() => resolve()))
        server.closeAllConnections()
        await closing
      }
      // A forced migration a rule started is not awaited: like an admin migrate cut by SIGTERM, the
      // Controller's cancel path and the tokens' expiry leave the VM where it was.
    },
  }
}
