import { close, constants, open, read, write } from 'node:fs'
import { Duplex } from 'node:stream'

const POLL_MS = 20
const READ_BYTES = 64 * 1024

/**
 * A virtio-serial port (a character device) as a stream. The descriptor is non-blocking and
 * polled: a blocking read would sit in libuv's thread pool, where it cannot be cancelled, and
 * keep the process from exiting. The port reads nothing (0 or EAGAIN) while no host is
 * connected, and writes fail with EAGAIN while its buffer is full: both are retried.
 * A virtio-serial port reads 0 (end of file) exactly while its host end is closed (no agent
 * connected to QEMU's socket, e.g. after the VM was restored on another host) and EAGAIN while
 * it is open but quiet: the 'host' event says when that changes (for the log).
 */
export class PortStream extends Duplex {
  private fd = -1
  private timer?: NodeJS.Timeout
  private reading = false
  private hostConnected?: boolean

  static open (path: string): Promise<PortStream> {
    return new Promise((resolve, reject) => {
      open(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOCTTY, (err, fd) => {
        if (err) return reject(err)
        const stream = new PortStream()
        stream.fd = fd
        resolve(stream)
      })
    })
  }

  override _read (): void {
    if (this.reading || this.fd < 0) return
    this.reading = true
    const buffer = Buffer.allocUnsafe(READ_BYTES)
    read(this.fd, buffer, 0, READ_BYTES, null, (err, bytes) => {
      this.reading = false
      if (this.destroyed) return
      if (err && err.code !== 'EAGAIN') return this.destroy(err)
      this.hostIs(err !== null || bytes > 0)
      if (!err && bytes > 0) {
        if (this.push(buffer.subarray(0, bytes))) this._read()
        return
      }
      this.timer = setTimeout(() => this._read(), POLL_MS)
    })
  }

  private hostIs (connected: boolean): void {
    if (this.hostConnected === connected) return
    this.hostConnected = connected
    this.emit('host', connected)
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const attempt = (offset: number): void => {
      write(this.fd, chunk, offset, chunk.length - offset, null, (err, written) => {
        if (err && err.code !== 'EAGAIN') return callback(err)
        const next = offset + (err ? 0 : written)
        if (next >= chunk.length) return callback()
        this.timer = setTimeout(() => attempt(next), err ? POLL_MS : 0)
      })
    }
    attempt(0)
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.timer)
    if (this.fd < 0) return callback(err)
    const fd = this.fd
    this.fd = -1
    close(fd, () => callback(err))
  }
}
