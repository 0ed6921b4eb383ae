import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import type { AgentDelivery as Delivery } from '../../../protocol/relay/delivery'
import type { Teardownable } from '../../support/teardownable'

export interface ReceivedPost {
  key: string | undefined
  contentType: string | undefined
  deliveries: Delivery[]
}

/**
 * A small HTTP push receiver on loopback, as a consumer site would run: records every POST (a
 * delivery or an array of them) with its Idempotency-Key. It can go down (connection refused on
 * its port) and come back on the same port, or answer with an error status for a while.
 */
export class DeliveryReceiver {
  readonly posts: ReceivedPost[] = []
  /** Status to answer with instead of 200 (what was received is then not recorded, only counted). */
  failWith: number | undefined
  rejected = 0
  private server?: Server
  private readonly sockets = new Set<Socket>()

  private constructor (public port: number) {}

  static async start (t: Teardownable, port = 0): Promise<DeliveryReceiver> {
    const receiver = new DeliveryReceiver(port)
    t.teardown(() => receiver.down())
    await receiver.up()
    return receiver
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}/ingest`
  }

  /** Listens (again) on its port; the first start picks a free one. */
  async up (): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res))
    server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as { port: number }).port
    this.server = server
  }

  /** Stops listening and drops open connections: the agent now gets "connection refused". */
  async down (): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const socket of this.sockets) socket.destroy()
    await closed
  }

  /** Every delivery received, repeats included, in arrival order. */
  all (): Delivery[] {
    return this.posts.flatMap((post) => post.deliveries)
  }

  /** Deliveries after dropping repeats by id, in order of first arrival; throws if one id came with two different contents. */
  unique (): Delivery[] {
    const byId = new Map<string, Delivery>()
    for (const delivery of this.all()) {
      const seen = byId.get(delivery.id)
      if (seen && !isDeepStrictEqual(seen, delivery)) throw new Error(`delivery ${delivery.id} arrived twice with different contents: ${JSON.stringify(seen)} vs ${JSON.stringify(delivery)}`)
      if (!seen) byId.set(delivery.id, delivery)
    }
    return [...byId.values()]
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/ingest') {
        res.writeHead(404).end()
        return
      }
      if (this.failWith !== undefined) {
        this.rejected++
        res.writeHead(this.failWith).end()
        return
      }
      let body: unknown
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        res.writeHead(400).end('not JSON')
        return
      }
      const key = req.headers['idempotency-key']
      this.posts.push({
        key: typeof key === 'string' ? key : undefined,
        contentType: req.headers['content-type'],
        deliveries: Array.isArray(body) ? body as Delivery[] : [body as Delivery],
      })
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    })
  }
}
