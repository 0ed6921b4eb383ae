import type { Server } from 'node:net'
import { startMonitoring, type RunningMonitoring } from '../monitoring/start-monitoring'
import { Throttle } from '../proxy/throttle'
import { createSourceServer } from '../proxy/source-server'
import type { SiteConfig } from './config'
import { SiteContext, type Log } from './site-context'
import { createSiteServer } from './site-server'
import { sweepExpired } from './sweeper'

const SWEEP_INTERVAL_MS = 2000

export interface RunningSite {
  site: SiteContext
  close: () => Promise<void>
}

/** Starts the control endpoint and every transfer proxy; resolves once all listen. */
export async function startSite (config: SiteConfig, log: Log): Promise<RunningSite> {
  const site = await SiteContext.load(config, log)
  const servers: Server[] = []
  let monitoring: RunningMonitoring | undefined
  try {
    monitoring = await startMonitoring(site, listen)
    servers.push(await listen(createSiteServer(site), config.listen))
    for (const [index, proxy] of config.proxies.entries()) {
      const throttle = proxy.maxBytesPerSecond === undefined ? undefined : new Throttle(proxy.maxBytesPerSecond)
      const server = createSourceServer({ index, state: site.state, tls: site.tls, throttle, log })
      servers.push(await listen(server, proxy.listen))
    }
  } catch (err) {
    for (const server of servers) server.close()
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
  return {
    site,
    close: async () => {
      clearInterval(timer)
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as Server & { closeAllConnections?: () => void }).closeAllConnections?.()
      })))
      await monitoring?.close()
      site.state.close()
    },
  }
}

function listen (server: Server, address: string): Promise<Server> {
  const at = address.lastIndexOf(':')
  const host = address.slice(0, at).replace(/^\[|\]$/g, '')
  const port = Number(address.slice(at + 1))
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}
