import type { Server } from 'node:http'
import { runController } from '../controller/run-controller'
import type { SiteContext } from '../site/site-context'
import type { MonitoringRelay } from '../relay/monitoring-relay'
import { PrimaryLatest } from './primary-latest'
import { createPrimaryRegistry } from './primary-metrics'
import { startPrimaryMetricsServer } from './primary-metrics-server'
import { latestDeliveries } from './primary-queries'
import { RuleFirings } from './rules/rule-firings'
import { RuleRunner } from './rules/rule-runner'
import { SealedOpener } from './sealed-opener'

export interface RunningPrimaryViews {
  /** Where /metrics listens, when `monitoring.metricsListen` is set. */
  metrics?: string
  rules?: RuleRunner
  close: () => Promise<void>
}

/**
 * The primary site's views on its store: `/metrics` with the newest value of each VM
 * metric, and the SLA rules, both fed by relay.onStored. Subscribed before any ingest listens, so
 * no stored delivery passes them by.
 */
export async function startPrimaryViews (site: SiteContext, relay: MonitoringRelay): Promise<RunningPrimaryViews> {
  const { metricsListen, metricsSealed, rules } = site.config.monitoring
  if (metricsListen === undefined && rules.length === 0) return { close: async () => {} }
  const opener = await SealedOpener.load(site.config.keys)
  if (!opener.hasKey) site.log({ event: 'config-warning', detail: `${opener.keyFile} is missing: sealed deliveries cannot be read by rules or /metrics` })
  let runner: RuleRunner | undefined
  if (rules.length > 0) {
    const firings = new RuleFirings(relay.primary.db)
    runner = new RuleRunner({ rules, opener, log: site.log, firings, forceMigration: (vmId) => runController(site, vmId, []) })
    relay.onStored(runner.handle)
  }
  let server: Server | undefined
  if (metricsListen !== undefined) {
    const latest = new PrimaryLatest()
    relay.onStored(latest.update)
    latest.update(latestDeliveries(relay.primary.db))
    server = await startPrimaryMetricsServer(createPrimaryRegistry({ latest, opener, includeSealed: metricsSealed, log: site.log }), metricsListen)
  }
  return {
    metrics: metricsListen,
    rules: runner,
    close: async () => {
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
