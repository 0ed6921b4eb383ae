import { createServer, type Server } from 'node:https'
import { join } from 'node:path'
import { readTlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { pinnedRequest, readResponseBody } from '../../../protocol/http/pinned-request'
import { freePort, type TestSite } from './federation'

export interface RecordedRequest {
  path: string
  /** The request as the sending site wrote it (after TLS: what the receiving site reads). */
  body: Buffer
}

/**
 * A TLS-terminating recorder in front of a site: it presents that site's own certificate (so the
 * sender's fingerprint pin holds), keeps every request body, and passes request and answer through
 * unchanged (the signed answer included). Point a partner's `url` at `url` to see what it sends.
 * When the site is down the connection is dropped, as the site's own absence would.
 */
export class RecordingProxy {
  readonly requests: RecordedRequest[] = []
  private server?: Server

  private constructor (readonly url: string) {}

  static async start (t: { teardown (fn: () => unknown): void }, site: TestSite): Promise<RecordingProxy> {
    const tls = await readTlsIdentity(join(site.dir, 'keys'))
    const ip = site.spec.ip
    const port = await freePort(ip)
    const target = { url: `https://${site.config.listen as string}`, fingerprint: site.keys.tlsFingerprint }
    const proxy = new RecordingProxy(`https://${ip}:${port}`)
    proxy.server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        proxy.requests.push({ path: req.url ?? '', body })
        pinnedRequest(target, { method: 'POST', path: req.url ?? '/', headers: { 'content-type': 'application/json' }, body, timeoutMs: 30_000 })
          .then(async (answer) => {
            const bytes = await readResponseBody(answer, 16 * 1024 * 1024)
            const headers: Record<string, string> = {}
            for (const [key, value] of Object.entries(answer.headers)) if (typeof value === 'string' && key !== 'connection' && key !== 'keep-alive') headers[key] = value
            res.writeHead(answer.statusCode ?? 502, headers)
            res.end(bytes)
          })
          .catch(() => req.socket.destroy())
      })
    })
    await new Promise<void>((resolve) => proxy.server!.listen(port, ip, resolve))
    t.teardown(() => proxy.close())
    return proxy
  }

  /** The JSON of every recorded request to /v1/OP. */
  bodies (op: string): any[] {
    return this.requests.filter((r) => r.path === `/v1/${op}`).map((r) => JSON.parse(r.body.toString('utf8')))
  }

  close (): Promise<void> {
    return new Promise((resolve) => {
      if (this.server === undefined) return resolve()
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }
}
