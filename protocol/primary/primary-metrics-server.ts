import type { Server } from 'node:http'
import type { Registry } from 'prom-client'
import { guardConnections, type ConnectionLimits } from '../http/connection-guard'
import { parseListenAddress } from '../http/listen-address'
import type { WebConfig } from '../http/web-config'
import { createWebServer } from '../http/web-server'

/**
 * Serves the primary site's registry on GET /metrics; anything else is 404. Plain HTTP without a web
 * config (bind it to a trusted address); with one, HTTPS and basic auth as it says (http/web-config.ts).
 */
export async function startPrimaryMetricsServer (registry: Registry, listen: string, options: { web?: WebConfig, limits?: ConnectionLimits } = {}): Promise<Server> {
  const server = createWebServer(options.web, (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
    } else if ((req.url ?? '/').split('?')[0] === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`scrape failed: ${err.message}\n`),
      )
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n')
    }
  })
  if (options.limits !== undefined) guardConnections(server, options.limits)
  const { host, port } = parseListenAddress(listen)!
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
