/**
 * Joins two byte streams across sites for a live migration (like KubeVirt's migration proxy: it only
 * joins streams, the policy lives with the caller). The Source's QEMU (its migration stream, its
 * NBD disk client) connects to a unix socket at the Source; the Destination's QEMU listens on a
 * unix socket at the Destination. Between them runs the transfer proxies' TLS channel, opened, as
 * for a cold transfer, by the Destination: it parks a connection at the Source's proxy
 * (`GET /v1/stream/CHANNEL`, `Upgrade: fedvm-stream`, the transfer token in a header, its client
 * certificate presented); when the Source's QEMU connects, the Source answers 101 on a parked
 * connection and only then does the Destination connect to its QEMU's socket (which accepts a
 * single connection for the migration stream). The Destination parks the next one at once: NBD opens
 * one connection per disk.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { rm } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { ProtocolError, toProtocolError } from '../errors'
import { ByteMeter } from './byte-meter'
import { TOKEN_HEADER } from './transfer-headers'

export const STREAM_UPGRADE = 'fedvm-stream'
/** A stream is opened under the same token header as a file request. */
export const STREAM_TOKEN_HEADER = TOKEN_HEADER
const STREAM_PATH = /^\/v1\/stream\/([a-z][a-z0-9-]{0,31})$/
/** How long a Source connection waits for the Destination's parked one before it is dropped. */
const PAIR_TIMEOUT_MS = 30_000
const RETRY_MIN_MS = 200
const RETRY_MAX_MS = 5000

/** Decides whether a parked connection may serve a channel: throws a ProtocolError when not; returns the key it parks under. */
export type AuthorizeStream = (token: string | undefined, channel: string, peerFingerprint: string | undefined) => string

interface Waiter { resolve: (socket: Duplex) => void, timer: NodeJS.Timeout }

/** The Source's side: parked connections (from the proxy server's 'upgrade' event) and the unix sockets its QEMU connects to. */
export class StreamPark {
  private readonly parked = new Map<string, Duplex[]>()
  private readonly waiting = new Map<string, Waiter[]>()
  private readonly listeners = new Set<Server>()

  constructor (private readonly authorize: AuthorizeStream, private readonly log: (event: Record<string, unknown>) => void = () => {}) {}

  /** For the proxy server's 'upgrade' event; refuses with a problem status line when the token or certificate does not fit. */
  handleUpgrade (req: IncomingMessage, socket: Duplex): void {
    let key: string
    try {
      const match = STREAM_PATH.exec(req.url ?? '')
      if (req.headers.upgrade !== STREAM_UPGRADE || match === null) throw new ProtocolError('unknown-operation', 'not a stream channel')
      const token = req.headers[STREAM_TOKEN_HEADER]
      key = this.authorize(typeof token === 'string' ? token : undefined, match[1], (socket as TLSSocket).getPeerCertificate?.()?.fingerprint256)
      key = `${key}/${match[1]}`
    } catch (err) {
      const e = toProtocolError(err)
      this.log({ event: 'stream-refused', code: e.code })
      socket.end(`HTTP/1.1 403 Forbidden\r\n${STREAM_TOKEN_HEADER}-problem: ${e.code}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
      return
    }
    const s = socket as Socket
    s.setTimeout?.(0)
    s.setNoDelay?.(true)
    const waiter = this.waiting.get(key)?.shift()
    if (waiter !== undefined) {
      clearTimeout(waiter.timer)
      waiter.resolve(socket)
      return
    }
    const list = this.parked.get(key) ?? []
    list.push(socket)
    this.parked.set(key, list)
    socket.once('close', () => {
      const at = list.indexOf(socket)
      if (at >= 0) list.splice(at, 1)
    })
  }

  /**
   * Listens on `path` for the Source's QEMU and joins each connection to a parked one of `key`
   * (the authorized key) and `channel`. Listening before Perform matters: libvirt checks that the
   * NBD socket exists before it starts.
   */
  async listen (key: string, channel: string, path: string): Promise<Server> {
    await rm(path, { force: true })
    const server = createServer((local) => {
      local.setNoDelay(true)
      this.take(`${key}/${channel}`).then((remote) => {
        remote.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${STREAM_UPGRADE}\r\nconnection: Upgrade\r\n\r\n`)
        join(local, remote, channel)
        this.log({ event: 'stream-joined', channel })
      }, (err) => {
        this.log({ event: 'stream-unpaired', channel, error: (err as Error).message })
        local.destroy()
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => { server.off('error', reject); resolve() })
    })
    this.listeners.add(server)
    server.once('close', () => this.listeners.delete(server))
    return server
  }

  /** Closes the listeners and every parked connection of `key` (the migration ended). */
  release (key: string): void {
    for (const [k, list] of this.parked) {
      if (!k.startsWith(`${key}/`)) continue
      for (const s of list) s.destroy()
      this.parked.delete(k)
    }
  }

  /**
   * Answers one already parked connection of `key` and `channel` with `message`, then ends it (a
   * channel that carries a single message rather than a QEMU stream). Resolves once the message is
   * handed to the connection, true; false at once when none is parked: a Destination that parks
   * none for the channel is not waited for.
   */
  async signal (key: string, channel: string, message: Buffer): Promise<boolean> {
    const socket = this.parked.get(`${key}/${channel}`)?.shift()
    if (socket === undefined) return false
    const head = Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${STREAM_UPGRADE}\r\nconnection: Upgrade\r\n\r\n`)
    const written = await new Promise<boolean>((resolve) => {
      socket.write(Buffer.concat([head, message]), (err) => resolve(err === undefined || err === null))
    })
    socket.end()
    this.log({ event: 'stream-signalled', channel, written })
    return written
  }

  close (): void {
    for (const server of this.listeners) server.close()
    for (const list of this.parked.values()) for (const s of list) s.destroy()
    this.parked.clear()
  }

  private async take (key: string): Promise<Duplex> {
    const socket = this.parked.get(key)?.shift()
    if (socket !== undefined) return socket
    return await new Promise<Duplex>((resolve, reject) => {
      const list = this.waiting.get(key) ?? []
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          list.splice(list.indexOf(waiter), 1)
          reject(new ProtocolError('transfer-failed', `no stream connection from the destination within ${PAIR_TIMEOUT_MS} ms`))
        }, PAIR_TIMEOUT_MS)
      }
      list.push(waiter)
      this.waiting.set(key, list)
    })
  }
}

export interface ParkOptions {
  /** The Source proxy's https URL and certificate fingerprint (from the sealed ticket). */
  url: string
  fingerprint: string
  token: string
  channel: string
  clientCert: { key: string, cert: string }
  /** The Destination QEMU's unix socket this channel's streams go to. */
  targetPath?: string
  /**
   * Instead of `targetPath`: takes the one connection the Source answers on, with what followed the
   * answer's head (a channel that carries a single message); nothing is parked after it.
   */
  take?: (socket: Duplex, rest: Buffer) => void
  log?: (event: Record<string, unknown>) => void
}

/**
 * The Destination's side: keeps one connection parked at the Source's proxy for `channel`; each
 * one the Source takes is joined to a new connection to `targetPath`, and the next is parked.
 * A refusal (403) stops parking and is reported by `failed`.
 */
export class StreamParker {
  private closed = false
  private readonly open = new Set<Duplex>()
  failed: ProtocolError | undefined
  joined = 0
  /** The bytes the Source sent on this channel's joined streams (what its QEMU sends toward this site's), counted as they arrive. */
  readonly received = new ByteMeter()
  /** The wait before parking again after a connection that was never answered (doubles up to 5 s: a Source that is down is not hammered). */
  private retryMs = RETRY_MIN_MS

  constructor (private readonly o: ParkOptions) {
    this.park()
  }

  get channel (): string {
    return this.o.channel
  }

  close (): void {
    this.closed = true
    for (const s of this.open) s.destroy()
  }

  private park (): void {
    if (this.closed) return
    const url = new URL(this.o.url)
    const socket = tlsConnect({
      host: url.hostname, port: Number(url.port || 443), rejectUnauthorized: false,
      servername: /^[\d.]+$/.test(url.hostname) ? undefined : url.hostname,
      key: this.o.clientCert.key, cert: this.o.clientCert.cert
    })
    this.open.add(socket)
    let answered = false
    let head = Buffer.alloc(0)
    const retry = (): void => {
      this.open.delete(socket)
      if (answered || this.closed || this.failed !== undefined) return
      setTimeout(() => this.park(), this.retryMs).unref()
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS)
    }
    socket.once('close', retry)
    socket.on('error', (err) => this.o.log?.({ event: 'stream-park-error', channel: this.o.channel, error: err.message }))
    socket.once('secureConnect', () => {
      if (socket.getPeerCertificate().fingerprint256 !== this.o.fingerprint) {
        this.failed = new ProtocolError('partner-unreachable', 'the source proxy presented a certificate that does not match its pinned fingerprint')
        socket.destroy()
        return
      }
      socket.setNoDelay(true)
      socket.write(`GET /v1/stream/${this.o.channel} HTTP/1.1\r\nhost: proxy\r\nconnection: Upgrade\r\nupgrade: ${STREAM_UPGRADE}\r\n${STREAM_TOKEN_HEADER}: ${this.o.token}\r\n\r\n`)
    })
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) {
        if (head.length > 8192) socket.destroy()
        return
      }
      socket.off('data', onData)
      answered = true
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head.toString('latin1', 0, end))?.[1]
      if (status !== '101') {
        const code = new RegExp(`${STREAM_TOKEN_HEADER}-problem: ([a-z-]+)`).exec(head.toString('latin1', 0, end))?.[1]
        this.failed = new ProtocolError('token-foreign', `the source proxy refused the stream channel (${status ?? 'no status'} ${code ?? ''})`.trim())
        this.o.log?.({ event: 'stream-park-refused', channel: this.o.channel, status, code })
        socket.destroy()
        return
      }
      socket.pause()
      this.retryMs = RETRY_MIN_MS
      const rest = head.subarray(end + 4)
      if (this.o.take !== undefined || this.o.targetPath === undefined) {
        this.o.take?.(socket, rest)
        return
      }
      const local = netConnect(this.o.targetPath)
      local.setNoDelay(true)
      local.once('connect', () => {
        if (rest.length > 0) local.write(rest)
        this.received.add(rest.length, Date.now())
        join(socket, local, this.o.channel)
        // A second reader of the same chunks: it only counts, the relay keeps its own flow control.
        socket.on('data', (chunk: Buffer) => this.received.add(chunk.length, Date.now()))
        socket.resume()
        this.joined++
      })
      local.once('error', (err) => {
        this.o.log?.({ event: 'stream-target-error', channel: this.o.channel, error: err.message })
        socket.destroy()
      })
      this.open.add(local)
      local.once('close', () => this.open.delete(local))
      this.park()
    }
    socket.on('data', onData)
  }
}

/**
 * How much one direction of a channel may hold unsent before it stops reading.
 * - The disks (`nbd`): 4 MiB. A stream's own high-water mark (16 KiB) is smaller than one NBD write
 *   (QEMU's mirror sends up to 16 writes of up to 1 MiB at a time): `pipe()` pauses and resumes its
 *   source many times per request, and on a busy machine each resume waits for the loop's next turn.
 * - QEMU's migration stream: 256 KiB. QEMU counts what the relay holds as sent, so a deep buffer makes
 *   its bandwidth estimate too high in the short late passes, and it pauses the guest with more left
 *   than it expects (measured: pauses up to 382 ms against a 300 ms limit with 4 MiB).
 */
export function relayBufferBytes (channel: string): number {
  return channel === 'migration' ? 256 * 1024 : 4 * 1024 * 1024
}

/** Copies `from` into `to`, reading on while `to` holds less than `bufferBytes`; `from`'s end ends `to`. */
function forward (from: Duplex, to: Duplex, bufferBytes: number): void {
  from.on('data', (chunk: Buffer) => {
    to.write(chunk)
    if (to.writableLength < bufferBytes) return
    from.pause()
    to.once('drain', () => from.resume())
  })
  from.once('end', () => to.end())
}

/** How long a side whose partner closed may take to hand over what it still holds before it is destroyed. */
const FLUSH_TIMEOUT_MS = 30_000

/**
 * Relays both ways for `channel`. A side that closes after its end lets the other hand over what it
 * still holds (up to the channel's buffer) before closing; a failure destroys both at once.
 */
function join (a: Duplex, b: Duplex, channel: string): void {
  const bufferBytes = relayBufferBytes(channel)
  forward(a, b, bufferBytes)
  forward(b, a, bufferBytes)
  const fail = (): void => { a.destroy(); b.destroy() }
  a.on('error', fail)
  b.on('error', fail)
  a.once('close', () => closeAfterFlush(a, b))
  b.once('close', () => closeAfterFlush(b, a))
}

function closeAfterFlush (closed: Duplex, other: Duplex): void {
  if (other.destroyed) return
  if (!closed.readableEnded || other.writableFinished) { other.destroy(); return }
  const timer = setTimeout(() => other.destroy(), FLUSH_TIMEOUT_MS)
  timer.unref()
  other.end()
  other.once('finish', () => { clearTimeout(timer); other.destroy() })
  other.once('close', () => clearTimeout(timer))
}
