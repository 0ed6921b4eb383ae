/**
 * Where agents' `http` consumers POST deliveries, standing in for the primary site's ingest: an
 * HTTP server of the test process on a unix socket, reached from inside a site's network namespace
 * through socat listening there on ADDRESS:PORT. Every delivery is kept (repeats too) with the
 * URL path it was posted to (give each agent its own path: `url + '/NAME'`), so a test can count
 * repeats and tell which agent sent what, as well as take the distinct deliveries.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { inNetns } from './site-network'

export interface ReceivedDelivery { id: string, vm: string, metric: string, samples?: Array<{ ts: number, value: number }>, [key: string]: unknown }
export interface Received { path: string, at: number, delivery: ReceivedDelivery }

export class DeliveryReceiver {
  /** Every delivery as received, in arrival order, repeats included. */
  readonly received: Received[] = []
  private socat?: ChildProcess

  private constructor (private readonly server: Server, readonly url: string) {}

  /** Listens at http://ADDRESS:PORT/ingest inside `netns`; `dir` holds the unix socket. */
  static async start (netns: string, address: string, port: number, dir: string): Promise<DeliveryReceiver> {
    const socketPath = join(dir, 'receiver.sock')
    let receiver: DeliveryReceiver | undefined
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (d) => { body += d })
      req.on('end', () => {
        try {
          const value = JSON.parse(body) as ReceivedDelivery | ReceivedDelivery[]
          const at = Date.now()
          for (const delivery of Array.isArray(value) ? value : [value]) receiver!.received.push({ path: req.url ?? '', at, delivery })
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
        } catch {
          res.writeHead(400).end()
        }
      })
    })
    receiver = new DeliveryReceiver(server, `http://${address}:${port}/ingest`)
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, resolve) })
    const [command, args] = inNetns(netns, 'socat', [`TCP-LISTEN:${port},bind=${address},fork,reuseaddr`, `UNIX-CONNECT:${socketPath}`])
    receiver.socat = spawn(command, args, { stdio: 'ignore' })
    await receiver.waitListening(netns, address, port)
    return receiver
  }

  /** The distinct deliveries (first of each id) for `vm`. */
  distinct (vm: string): ReceivedDelivery[] {
    const seen = new Map<string, ReceivedDelivery>()
    for (const { delivery: d } of this.received) if (d.vm === vm && !seen.has(d.id)) seen.set(d.id, d)
    return [...seen.values()]
  }

  async stop (): Promise<void> {
    const socat = this.socat
    if (socat !== undefined && socat.exitCode === null && socat.signalCode === null) {
      const exited = new Promise((resolve) => socat.once('exit', resolve))
      socat.kill('SIGTERM')
      await exited
    }
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async waitListening (netns: string, address: string, port: number): Promise<void> {
    const until = Date.now() + 10_000
    for (;;) {
      const [command, args] = inNetns(netns, 'ss', ['-Htln', `sport = :${port}`])
      const out = await new Promise<string>((resolve) => {
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] })
        let text = ''
        child.stdout.on('data', (d) => { text += d })
        child.on('close', () => resolve(text))
      })
      if (out.includes(`${address}:${port}`)) return
      if (Date.now() > until) throw new Error(`socat did not listen on ${address}:${port} in ${netns}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
