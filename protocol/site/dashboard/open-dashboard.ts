import type Database from 'better-sqlite3'
import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import { ConfigError } from '../../errors'
import { loadWebConfig } from '../../http/web-config'
import { createWebServer } from '../../http/web-server'
import type { Log } from '../../log'
import { openStoreForReading } from '../../primary/primary-queries'
import type { Rule } from '../../primary/rules/rules-config'
import { SealedOpener } from '../../primary/sealed-opener'
import type { LocationRecord } from '../../roles/records'
import type { SiteStatus } from '../site-status'
import { isLoopbackListen, type DashboardConfig } from './dashboard-config'
import { dashboardRoutes, type ChartLibrary } from './dashboard-routes'
import { KpiCache } from './kpi-cache'
import { kpiSeries } from './kpi-series'
import { siteOverview } from './site-overview'

export interface DashboardDeps {
  config: DashboardConfig
  /** What `fedvm site status` answers (site-status.ts): VMs, where they are, running migrations. */
  status: () => SiteStatus
  location: (vmId: string) => LocationRecord | undefined
  /** The site's state folder (monitoring.db, which the site's monitoring has opened by now) and keys folder (seal.key). */
  stateDir: string
  keysDir: string
  rules: readonly Rule[]
  log: Log
}

export interface Dashboard {
  /** Not yet listening: the daemon binds it like its other listeners. */
  server: Server
  close: () => void
}

/**
 * Builds the dashboard's server: a web config's TLS and basic auth when one is given (read now, so a
 * bad one stops the site at start naming its key), a read-only connection to the monitoring store of
 * its own (the page never writes), and the chart library's files.
 */
export async function openDashboard (deps: DashboardDeps): Promise<Dashboard> {
  const web = deps.config.webConfig === undefined ? undefined : await loadWebConfig(deps.config.webConfig)
  // The config allows a listen address off loopback only with a web config; it must also ask for credentials.
  if (web !== undefined && web.users === undefined && !isLoopbackListen(deps.config.listen)) {
    throw new ConfigError('dashboard.webConfig', `${deps.config.webConfig} lists no basic_auth_users: a dashboard off loopback (${deps.config.listen}) needs them`)
  }
  const chart = await readChartLibrary()
  const opener = await SealedOpener.load(deps.keysDir)
  const db: Database.Database = openStoreForReading(deps.stateDir)
  const cache = new KpiCache(db, (vmId) => kpiSeries(db, vmId, { openSealed: deps.config.sealed, opener }))
  const reads = {
    overview: () => siteOverview(deps.status(), deps.rules, db),
    kpis: async (vmId: string) => {
      if (deps.location(vmId) !== undefined) return await cache.series(vmId)
      cache.forget(vmId)
      return undefined
    },
  }
  const routes = dashboardRoutes(reads, chart, deps.log, { checkHost: web?.users === undefined })
  return { server: createWebServer(web, routes), close: () => db.close() }
}

async function readChartLibrary (): Promise<ChartLibrary> {
  const [script, css] = await Promise.all([
    readFile(require.resolve('uplot/dist/uPlot.iife.min.js')),
    readFile(require.resolve('uplot/dist/uPlot.min.css')),
  ])
  return { script, css }
}
