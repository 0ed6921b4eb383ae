import type { Server } from 'node:http'
import type { Registry } from 'prom-client'
import { DEFAULT_CONNECTION_LIMITS, guardConnections } from '../../protocol/http/connection-guard'
import type { WebConfig } from '../../protocol/http/web-config'
import { createWebServer } from '../../protocol/http/web-server'

/**
 * Serves the registry on GET /metrics (and a plain /healthz); anything else is 404. With a web
 * config (the agent's `webConfig`): HTTPS and basic auth as it says.
 */
export async function startMetricsServer (registry: Registry, host: string, port: number, web?: WebConfig): Promise<Server> {
  const server = createWebServer(web, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`scrape failed: ${err.message}\n`),
      )
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n')
    }
  })
  guardConnections(server, DEFAULT_CONNECTION_LIMITS)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return server
}
