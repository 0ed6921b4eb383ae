/**
 * One connection to libvirtd's unix socket speaking its remote protocol: calls are matched to
 * replies by serial, so many can be in flight. A call given up by its caller (deadline, abort)
 * stays "abandoned" until libvirtd answers it; its late reply is dropped. Events and keepalive
 * messages are ignored (fedvm registers for none).
 */
import { connect, type Socket } from 'node:net'
import { HypervisorError } from '../../errors'
import {
  decodeHeader, encodeCall, HEADER_BYTES, MESSAGE_MAX, MessageStatus, MessageType, Proc, REMOTE_PROGRAM, VIR_ERR_NO_DOMAIN
} from './protocol'
import { decodeAuthList, decodeRemoteError, encodeConnectOpen } from './remote-types'

const AUTH_NONE = 0
const AUTH_POLKIT = 4

export interface CallOptions {
  signal?: AbortSignal
  /** Gives up waiting after this many ms (the call stays abandoned on the server side). */
  timeoutMs?: number
}

interface Pending {
  proc: number
  resolve: (body: Buffer) => void
  reject: (err: Error) => void
}

export class RpcConnection {
  private readonly pending = new Map<number, Pending>()
  private readonly abandonedSerials = new Set<number>()
  private serial = 1
  private chunks: Buffer[] = []
  private buffered = 0
  private closedError: HypervisorError | undefined
  private readonly closeListeners: Array<(err: HypervisorError) => void> = []

  private constructor (private readonly socket: Socket) {
    socket.on('data', chunk => this.onData(chunk))
    socket.on('error', err => this.fail(new HypervisorError('CONNECTION_LOST', `libvirt connection: ${err.message}`, { cause: err })))
    socket.on('close', () => this.fail(new HypervisorError('CONNECTION_LOST', 'libvirt closed the connection')))
  }

  /** Connects, authenticates (none or polkit, as root gets on the local socket) and opens `uri`. */
  static async open (socketPath: string, uri: string, options: CallOptions = {}): Promise<RpcConnection> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(socketPath)
      s.once('connect', () => { s.removeAllListeners('error'); resolve(s) })
      s.once('error', err => reject(new HypervisorError('CONNECT_FAILED', `cannot connect to libvirt at ${socketPath}: ${err.message}`, { cause: err })))
    })
    const conn = new RpcConnection(socket)
    try {
      const auth = decodeAuthList(await conn.call(Proc.AUTH_LIST, Buffer.alloc(0), options))
      if (!auth.includes(AUTH_NONE) && auth.length > 0) {
        if (!auth.includes(AUTH_POLKIT)) throw new HypervisorError('CONNECT_FAILED', `libvirt at ${socketPath} asks for authentication types ${auth.join(',')}; fedvm supports none and polkit`)
        await conn.call(Proc.AUTH_POLKIT, Buffer.alloc(0), options)
      }
      await conn.call(Proc.CONNECT_OPEN, encodeConnectOpen(uri), options)
      return conn
    } catch (err) {
      conn.destroy()
      if (err instanceof HypervisorError && err.code !== 'CONNECT_FAILED') {
        throw new HypervisorError('CONNECT_FAILED', `opening ${uri} at ${socketPath}: ${err.message}`, { cause: err })
      }
      throw err
    }
  }

  get closed (): boolean { return this.closedError !== undefined }

  /** Calls given up by their caller that libvirtd has not answered yet. */
  get abandoned (): number { return this.abandonedSerials.size }

  onClose (listener: (err: HypervisorError) => void): void { this.closeListeners.push(listener) }

  call (proc: number, body: Buffer, options: CallOptions = {}): Promise<Buffer> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError)
    const { signal, timeoutMs } = options
    if (signal?.aborted === true) return Promise.reject(abortError(signal))
    const serial = this.serial++
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const giveUp = (err: HypervisorError): void => {
        if (!this.pending.delete(serial)) return
        this.abandonedSerials.add(serial)
        cleanup()
        reject(err)
      }
      const onAbort = (): void => giveUp(abortError(signal))
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => giveUp(new HypervisorError('TIMEOUT', `libvirt procedure ${proc} did not answer within ${timeoutMs} ms`)), timeoutMs)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(serial, {
        proc,
        resolve: b => { cleanup(); resolve(b) },
        reject: e => { cleanup(); reject(e) }
      })
      this.socket.write(encodeCall(proc, serial, body))
    })
  }

  /** Closes politely (CONNECT_CLOSE), or at once when `force` or when libvirtd does not answer within 1 s. */
  async close (force = false): Promise<void> {
    if (this.closed) return
    if (!force) {
      await this.call(Proc.CONNECT_CLOSE, Buffer.alloc(0), { timeoutMs: 1000 }).catch(() => {})
    }
    this.destroy()
  }

  private destroy (): void {
    this.fail(new HypervisorError('CLOSED', 'libvirt connection closed'))
    this.socket.destroy()
  }

  private fail (err: HypervisorError): void {
    if (this.closedError !== undefined) return
    this.closedError = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.abandonedSerials.clear()
    for (const listener of this.closeListeners) listener(err)
  }

  private onData (chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    while (this.buffered >= 4) {
      const head = this.chunks[0].length >= 4 ? this.chunks[0] : this.flatten()
      const length = head.readUInt32BE(0)
      if (length < 4 + HEADER_BYTES || length > MESSAGE_MAX) {
        this.fail(new HypervisorError('PROTOCOL', `libvirt sent a message of ${length} bytes`))
        this.socket.destroy()
        return
      }
      if (this.buffered < length) return
      const all = this.flatten()
      const message = all.subarray(0, length)
      const rest = all.subarray(length)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
      this.onMessage(message)
    }
  }

  private flatten (): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)]
    return this.chunks[0]
  }

  private onMessage (message: Buffer): void {
    const header = decodeHeader(message)
    if (header.prog !== REMOTE_PROGRAM || header.type !== MessageType.REPLY) return
    if (this.abandonedSerials.delete(header.serial)) return
    const pending = this.pending.get(header.serial)
    if (pending === undefined) return
    this.pending.delete(header.serial)
    const body = message.subarray(4 + HEADER_BYTES)
    if (header.status === MessageStatus.OK) {
      pending.resolve(body)
      return
    }
    try {
      const remote = decodeRemoteError(body)
      const code = remote.code === VIR_ERR_NO_DOMAIN ? 'DOMAIN_NOT_FOUND' : 'REMOTE'
      const err = new HypervisorError(code, `libvirt: ${remote.message}`)
      Object.assign(err, { libvirtCode: remote.code })
      pending.reject(err)
    } catch (err) {
      pending.reject(err as Error)
    }
  }
}

function abortError (signal: AbortSignal | undefined): HypervisorError {
  return new HypervisorError('ABORTED', 'libvirt call aborted', { cause: signal?.reason })
}
