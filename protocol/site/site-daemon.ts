import type { Server } from 'node:net'
import { Throttle } from '../proxy/throttle'
import { Resolver } from '../roles/resolver'
import { createSourceServer } from '../proxy/source-server'
import { parseListenAddress } from '../http/listen-address'
import { guardConnections } from '../http/connection-guard'
import type { Log } from '../log'
import type { SiteConfig } from './config'
import { openDashboard, type Dashboard } from './dashboard/open-dashboard'
import { loadSiteParts, type SiteParts } from './site-parts'
import { createSiteServer } from './site-server'
import { siteStatus } from './site-status'
import { startMonitoring, type RunningMonitoring } from './start-monitoring'
import { sweepExpired } from './sweeper'

const SWEEP_INTERVAL_MS = 2000
/** How often the resolver looks for what is due (each item keeps its own backoff). */
const RESOLVE_INTERVAL_MS = 500

export interface RunningSite {
  site: SiteParts
  close: () => Promise<void>
}

/** Starts the control endpoint and every transfer proxy; resolves once all listen. */
export async function startSite (config: SiteConfig, log: Log): Promise<RunningSite> {
  const site = await loadSiteParts(config, log)
  const servers: Server[] = []
  // Every listener of the site bounds its idle and half-open connections the same way.
  const listen = (server: Server, address: string): Promise<Server> => {
    guardConnections(server, config.limits, log)
    return listenOn(server, address)
  }
  let monitoring: RunningMonitoring | undefined
  let dashboard: Dashboard | undefined
  try {
    monitoring = await startMonitoring(site, listen)
    servers.push(await listen(createSiteServer({ parts: site, relay: monitoring.relay }), config.listen))
    for (const [index, proxy] of config.proxies.entries()) {
      const throttle = proxy.maxBytesPerSecond === undefined ? undefined : new Throttle(proxy.maxBytesPerSecond)
      const relay = site.relay === undefined ? undefined : { transfers: site.relay, timeoutMs: config.limits.requestTimeoutMs }
      const server = createSourceServer({ index, state: site.state, tls: site.tls, throttle, relay, log })
      // Before the guard: it leaves an upgraded (parked stream) connection to its handler only when one is attached.
      server.on('upgrade', (req, socket) => site.streams[index].handleUpgrade(req, socket))
      servers.push(await listen(server, proxy.listen))
    }
    if (config.dashboard.listen !== 'off') {
      dashboard = await openDashboard({
        status: () => siteStatus(site), location: (vmId) => site.state.location(vmId), config: config.dashboard, stateDir: config.stateDir, keysDir: config.keys, rules: config.monitoring.rules, log,
      })
      servers.push(await listen(dashboard.server, config.dashboard.listen))
      log({ event: 'dashboard-listening', listen: config.dashboard.listen })
    }
  } catch (err) {
    for (const server of servers) server.close()
    dashboard?.close()
    await monitoring?.close()
    site.state.close()
    throw err
  }
  for (const [index, proxy] of config.proxies.entries()) {
    if (/^https:\/\/(0\.0\.0\.0|\[::\]):/.test(proxy.url)) log({ event: 'config-warning', detail: `proxies[${index}] listens on a wildcard address: set proxies[${index}].url to the address partners reach it at` })
  }
  let sweeping = false
  const timer = setInterval(() => {
    if (sweeping) return
    sweeping = true
    sweepExpired(site).finally(() => { sweeping = false })
  }, SWEEP_INTERVAL_MS)
  // Doubts a crash left (migrations this site decided or held) are ended from the start, then as they come due.
  const resolver = new Resolver(site)
  const resolve = (): void => { resolver.tick().catch((err) => log({ event: 'resolve-failed', error: String(err) })) }
  resolve()
  const resolving = setInterval(resolve, RESOLVE_INTERVAL_MS)
  return {
    site,
    close: async () => {
      clearInterval(timer)
      clearInterval(resolving)
      for (const park of site.streams) park.close()
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as Server & { closeAllConnections?: () => void }).closeAllConnections?.()
      })))
      dashboard?.close()
      await monitoring?.close()
      site.state.close()
    },
  }
}

function listenOn (server: Server, address: string): Promise<Server> {
  const { host, port } = parseListenAddress(address)!
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}
