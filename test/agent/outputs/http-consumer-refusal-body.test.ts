import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { HttpConsumer } from '../../../agent/outputs/http-consumer'
import { AgentStore } from '../../../agent/state/agent-store'
import { waitFor } from '../../support/wait'

// The agent's http consumer reads a refusal's problem document up to 1 MiB. A receiver on loopback
// refuses one delivery with a short document and another with one that goes on for 64 MiB: the
// short one's code and detail are the dead letter's reason; the long one is not read to its end
// (the receiver sees its answer cut off) and its status alone decides.

const MiB = 1024 * 1024
const LONG_BYTES = 64 * MiB

t.test('a refusal\'s problem document is read up to its limit; past it, the status alone decides', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-consumer-refusal-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const long = { sent: 0, finished: false, closed: false }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(422, { 'content-type': 'application/problem+json' })
      if (req.url === '/short') res.end(JSON.stringify({ code: 'bad-request', detail: 'deliveries[0].to: not a time', retryable: false }))
      else sendLong(res)
    })
  })
  const sendLong = (res: ServerResponse): void => {
    const prefix = Buffer.from('{"code":"bad-request","detail":"the long document","pad":"')
    const pad = Buffer.alloc(64 * 1024, 'x')
    const body = Readable.from((function * () {
      yield prefix
      for (let sent = prefix.length; sent < LONG_BYTES; sent += pad.length) yield pad
      yield Buffer.from('"}')
    })())
    body.on('data', (chunk: Buffer) => { long.sent += chunk.length })
    res.on('finish', () => { long.finished = true })
    res.on('close', () => { long.closed = true; body.destroy() })
    body.pipe(res)
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const store = new AgentStore(join(dir, 'agent'))
  const logs: string[] = []
  const consumers: HttpConsumer[] = []
  t.teardown(async () => {
    for (const c of consumers) c.stop()
    await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
    store.close()
  })
  const now = Date.now()
  const delivery = (id: string) => ({ id, vm: 'vm-a', metric: 'kpi:users.current_users', format: 'processed' as const, function: 'max' as const, from: now - 1000, to: now, value: 7 })
  const context = (): string => logs.join('\n')

  const short = new HttpConsumer('http:short', `${base}/short`, store, (line) => logs.push(line))
  consumers.push(short)
  store.enqueue('http:short', delivery('s1'))
  short.start()
  await waitFor('the short refusal set aside', () => store.deadLetterLength('http:short') === 1, 20_000, 25, context)
  t.match(logs.join('\n'), /consumer http:short: 1 delivery refused for good \(HTTP 422 bad-request: deliveries\[0\]\.to: not a time\)/, 'the document\'s code and detail')

  const longer = new HttpConsumer('http:long', `${base}/long`, store, (line) => logs.push(line))
  consumers.push(longer)
  store.enqueue('http:long', delivery('l1'))
  longer.start()
  await waitFor('the long refusal set aside', () => store.deadLetterLength('http:long') === 1, 20_000, 25, context)
  t.match(logs.join('\n'), /consumer http:long: 1 delivery refused for good \(HTTP 422 http-422: HTTP 422\)/, 'judged by its status alone')
  t.equal(store.queueLength('http:long'), 0)
  await waitFor('the receiver to see its answer cut off', () => long.closed, 10_000)
  t.notOk(long.finished, 'the receiver could not send its document to the end')
  t.ok(long.sent < LONG_BYTES, `it sent ${long.sent} of ${LONG_BYTES} bytes before the agent hung up`)
})
