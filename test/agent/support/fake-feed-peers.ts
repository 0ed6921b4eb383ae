import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Teardownable } from '../../support/teardownable'

/** One connection to (or from) a fake feed peer: the lines it received, what it writes, and when it closed. */
export class PeerConnection {
  readonly lines: string[] = []
  readonly closed: Promise<void>
  private pending = ''
  private ended = false
  private readonly lineWaiters: Array<() => void> = []

  constructor (readonly socket: Socket) {
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      this.pending += chunk
      let newline: number
      while ((newline = this.pending.indexOf('\n')) >= 0) {
        this.lines.push(this.pending.slice(0, newline))
        this.pending = this.pending.slice(newline + 1)
      }
      for (const wake of this.lineWaiters.splice(0)) wake()
    })
    socket.on('error', () => {}) // a reset by the other side is what some tests expect; 'close' follows
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.ended = true
      resolve()
    }))
  }

  get isClosed (): boolean {
    return this.ended
  }

  /** The n-th line received (0-based), parsed as JSON, once it has arrived. */
  async line (n: number, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    while (this.lines.length <= n) {
      if (this.ended) throw new Error(`the connection closed after ${this.lines.length} line(s)`)
      if (Date.now() > deadline) throw new Error(`no line ${n} within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        this.lineWaiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return JSON.parse(this.lines[n]) as Record<string, unknown>
  }

  write (text: string): void {
    this.socket.write(text)
  }

  /** Resolves true if the other side closed the connection within `timeoutMs`. */
  async closedWithin (timeoutMs: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(resolve, timeoutMs, false))])
  }

  close (): void {
    this.socket.destroy()
  }
}

/** A fake guest: a plain unix socket server at the agent's feed path, handing each connection to the test. */
export class FakeGuest {
  private readonly queue: PeerConnection[] = []
  private readonly waiters: Array<(connection: PeerConnection) => void> = []
  readonly connections: PeerConnection[] = []

  private constructor (private readonly server: Server) {}

  static async listen (t: Teardownable, path: string): Promise<FakeGuest> {
    const server = createServer()
    const guest = new FakeGuest(server)
    server.on('connection', (socket) => {
      const connection = new PeerConnection(socket)
      guest.connections.push(connection)
      const waiter = guest.waiters.shift()
      if (waiter) waiter(connection)
      else guest.queue.push(connection)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => resolve())
    })
    t.teardown(() => guest.close())
    return guest
  }

  /** The next connection the agent makes. */
  async next (timeoutMs = 10_000): Promise<PeerConnection> {
    const queued = this.queue.shift()
    if (queued) return queued
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the agent did not connect within ${timeoutMs} ms`)), timeoutMs)
      this.waiters.push((connection) => {
        clearTimeout(timer)
        resolve(connection)
      })
    })
  }

  async close (): Promise<void> {
    for (const connection of this.connections) connection.close()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** A fake host: connects to a guestfs feed socket. */
export async function connectAsHost (t: Teardownable, path: string): Promise<PeerConnection> {
  const socket = connect(path)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const connection = new PeerConnection(socket)
  t.teardown(() => connection.close())
  return connection
}
