import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'

/** Serves the primary site's registry on GET /metrics; anything else is 404 (plain HTTP: bind it to a trusted address). */
export async function startPrimaryMetricsServer (registry: Registry, listen: string): Promise<Server> {
  const server = createServer((req, res) => {
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
  const at = listen.lastIndexOf(':')
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(listen.slice(at + 1)), listen.slice(0, at).replace(/^\[|\]$/g, ''), () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
