import type { IncomingMessage } from 'node:http'
import { ProtocolError } from '../errors'
import { parseExact } from '../exact-json'

/** Reads a request body, refusing (and not buffering) anything past `limit` bytes. */
export async function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw new ProtocolError('request-too-large', `the body is ${declared} bytes; the limit is ${limit}`)
  return readLimited(req, limit, () => new ProtocolError('request-too-large', `the body exceeds ${limit} bytes`))
}

/** All of a stream, or the error `tooLarge` gives once more than `limit` bytes came (the stream is destroyed then, its rest never read). */
export async function readLimited (stream: AsyncIterable<unknown>, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    size += (chunk as Buffer).length
    if (size > limit) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/**
 * A request body. `exact`: an integer beyond ±2^53 is read as an exact bigint (protocol/exact-json.ts),
 * for bodies that carry KPI values (monitoring deliveries); other bodies keep JSON.parse's numbers,
 * since what handles them stores them with JSON.stringify, which refuses bigint.
 */
export function parseJson (body: Buffer, options: { exact?: boolean } = {}): unknown {
  try {
    const text = body.toString('utf8')
    return options.exact === true ? parseExact(text) : JSON.parse(text)
  } catch (err) {
    throw new ProtocolError('bad-request', 'the body is not valid JSON', { cause: err })
  }
}
