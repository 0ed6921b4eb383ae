/**
 * A single message on a parked stream channel (stream-relay.ts): the Source answers a parked
 * connection with it and ends the connection. The channel is the transfer proxies' TLS channel, so
 * the message is mutually authenticated: the Destination pinned the Source proxy's certificate, the
 * Source checked that the Destination presented the certificate its token is bound to.
 */
import type { Duplex } from 'node:stream'

/** The channel on which the Source says Perform is done (its cookie, for the Destination's Finish). */
export const PERFORMED_CHANNEL = 'performed'

/** A message ends with a newline: a connection that closes before it was cut short. */
const END = 0x0a

export function signalFrame (message: string): Buffer {
  if (message.includes('\n')) throw new Error('a stream signal is one line')
  return Buffer.from(`${message}\n`)
}

/**
 * Reads the one message of a connection (`rest`: what arrived with the answer's head). Rejects when
 * the connection ends before the newline or the message exceeds `maxBytes`.
 */
export async function readSignal (socket: Duplex, rest: Buffer, maxBytes: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    let got = rest
    let settled = false
    const done = (err: Error | undefined): void => {
      if (settled) return
      settled = true
      socket.off('data', onData)
      socket.destroy()
      const end = got.indexOf(END)
      if (err === undefined && end >= 0) resolve(got.toString('utf8', 0, end))
      else reject(err ?? new Error('the stream signal was cut short'))
    }
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk])
      if (got.indexOf(END) >= 0) done(undefined)
      else if (got.length > maxBytes) done(new Error(`the stream signal exceeds ${maxBytes} bytes`))
    }
    if (got.indexOf(END) >= 0) { done(undefined); return }
    socket.on('data', onData)
    socket.once('error', (err) => done(err))
    socket.once('close', () => done(undefined))
    socket.resume()
  })
}
