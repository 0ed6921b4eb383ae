import { rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import type { KpiStore } from '../store/kpi-store'
import { FeedSession } from './feed-session'
import { PortStream } from './port-stream'

export interface FeedEndpoint {
  close (): Promise<void>
}

/**
 * `unix:PATH`: guestfs listens on a unix socket (guest and host on one machine), one session per
 * connection. `dev:PATH`: a virtio-serial port inside a VM (the host side is QEMU's socket), one
 * session for the port's lifetime; every hello from the host restarts it from the host's cursor.
 */
export async function startFeed (endpoint: string, store: KpiStore, log: (line: string) => void): Promise<FeedEndpoint> {
  const separator = endpoint.indexOf(':')
  const kind = endpoint.slice(0, separator)
  const path = endpoint.slice(separator + 1)
  if (separator < 0 || path === '') throw new Error(`--feed must be unix:PATH or dev:PATH, not "${endpoint}"`)
  if (kind === 'unix') return listenUnix(path, store, log)
  if (kind === 'dev') return openPort(path, store, log)
  throw new Error(`--feed must be unix:PATH or dev:PATH, not "${endpoint}"`)
}

async function listenUnix (path: string, store: KpiStore, log: (line: string) => void): Promise<FeedEndpoint> {
  await rm(path, { force: true }) // a socket file left by a killed guestfs
  const sessions = new Set<FeedSession>()
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    const session = new FeedSession(store, socket, socket, (reason) => {
      log(`feed: closing connection after a bad frame: ${reason}`)
      socket.destroy()
    })
    sessions.add(session)
    socket.on('error', (err) => log(`feed: connection error: ${err.message}`))
    socket.on('close', () => {
      session.close()
      sessions.delete(session)
      sockets.delete(socket)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => resolve())
  })
  log(`feed: serving unix:${path}`)
  return {
    async close () {
      for (const session of sessions) session.close()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

async function openPort (path: string, store: KpiStore, log: (line: string) => void): Promise<FeedEndpoint> {
  const port = await PortStream.open(path)
  const session = new FeedSession(store, port, port, (reason) => log(`feed: ignoring the host until its next hello: ${reason}`))
  port.on('error', (err) => log(`feed: port error: ${err.message}`))
  port.on('host', (connected: boolean) => log(connected ? 'feed: the host end of the port is open' : 'feed: the host end of the port is closed (no host connected)'))
  log(`feed: serving dev:${path}`)
  return {
    async close () {
      session.close()
      port.destroy()
    },
  }
}
