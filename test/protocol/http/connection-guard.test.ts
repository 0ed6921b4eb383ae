import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, request, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { guardConnections, type ConnectionLimits } from '../../../protocol/http/connection-guard'
import { waitFor } from '../../support/wait'

// Idle and half-open connections against real listeners (plain HTTP as the ingest, TLS as the site
// server and the proxies) with short limits injected, and the per-peer cap. Many connections at
// once must all be closed by the guard's timers, well before Node's own 2-minute defaults.

const LIMITS: ConnectionLimits = { handshakeTimeoutMs: 400, headersTimeoutMs: 400, idleTimeoutMs: 400, maxConnectionsPerPeer: 300 }
const MANY = 200

async function listen (t: { teardown (fn: () => unknown): void }, server: HttpServer, limits = LIMITS): Promise<number> {
  guardConnections(server, limits)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  return (server.address() as AddressInfo).port
}

function tlsIdentity (t: { teardown (fn: () => unknown): void }): { key: Buffer, cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'fedvm-guard-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=guard', '-days', '1'], { stdio: 'ignore' })
  return { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }
}

/** Opens n connections, each sending `first` (if any) once connected; resolves with when each was closed by the server. */
async function openMany (port: number, n: number, first?: Buffer | string): Promise<{ sockets: Socket[], closed: Promise<number[]> }> {
  const sockets: Socket[] = []
  const closes: Array<Promise<number>> = []
  for (let i = 0; i < n; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.resume()
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    if (first !== undefined) socket.write(first)
    sockets.push(socket)
    closes.push(new Promise((resolve) => socket.once('close', () => resolve(Date.now()))))
  }
  return { sockets, closed: Promise.all(closes) }
}

t.test('plain HTTP: idle connections and partial headers are closed after the headers timeout', async (t) => {
  const port = await listen(t, createHttpServer((_req, res) => res.end('ok')))
  const started = Date.now()
  const idle = await openMany(port, MANY)
  const partial = await openMany(port, MANY, 'POST /v1/deliveries HTTP/1.1\r\nHost: x\r\nContent-')
  t.teardown(() => { for (const s of [...idle.sockets, ...partial.sockets]) s.destroy() })
  const closed = [...await idle.closed, ...await partial.closed]
  t.equal(closed.length, 2 * MANY)
  // Generous bound for a loaded machine; without the guard they stay open for minutes.
  t.ok(Math.max(...closed) - started < 15_000, `all closed after ${Math.max(...closed) - started} ms`)
})

t.test('TLS: connections that never finish the handshake, and ones that finish it and send part of a request, are closed', async (t) => {
  const port = await listen(t, createHttpsServer(tlsIdentity(t), (_req, res) => res.end('ok')))
  const started = Date.now()
  // Half a ClientHello: a TLS record header announcing more bytes than follow.
  const stalled = await openMany(port, MANY, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
  const partial: Array<Promise<void>> = []
  for (let i = 0; i < 20; i++) {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => socket.write('GET / HTTP/1.1\r\nHo'))
    socket.on('error', () => {})
    partial.push(new Promise((resolve) => socket.once('close', () => resolve())))
    t.teardown(() => socket.destroy())
  }
  await Promise.all([stalled.closed, ...partial])
  t.teardown(() => { for (const s of stalled.sockets) s.destroy() })
  t.ok(Date.now() - started < 15_000, `all closed after ${Date.now() - started} ms`)
})

t.test('a request in progress is not cut, and a keep-alive connection is closed once idle', async (t) => {
  const port = await listen(t, createHttpServer((_req, res) => { setTimeout(() => res.end('slow'), 1200) }))
  const answer = await new Promise<{ body: string, socket: Socket }>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/', agent: false, headers: { connection: 'keep-alive' } }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ body, socket: req.socket as Socket }))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(answer.body, 'slow', 'a handler slower than every timeout still answers')
  if (!answer.socket.destroyed) await new Promise((resolve) => answer.socket.once('close', resolve))
  t.pass('the idle keep-alive connection was closed')
})

t.test('connections beyond the per-peer cap are closed at once; the others stay until their timeout', async (t) => {
  const port = await listen(t, createHttpServer((_req, res) => res.end('ok')), { ...LIMITS, headersTimeoutMs: 60_000, maxConnectionsPerPeer: 10 })
  const within = await openMany(port, 10)
  t.teardown(() => { for (const s of within.sockets) s.destroy() })
  const over = await openMany(port, 5)
  await over.closed
  t.ok(within.sockets.every((s) => !s.destroyed), 'the first ten are still open')
  for (const s of within.sockets) s.destroy()
  await within.closed
  // Closing them frees their places (once the server saw them close): a new connection is served.
  const get = () => new Promise<number>((resolve, reject) => request({ port, host: '127.0.0.1', agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end())
  t.equal(await waitFor('a connection to be served again', get, 10_000), 200)
})

t.test('an upgraded connection (a parked stream channel) is not cut by the headers timer', async (t) => {
  const server = createHttpServer((_req, res) => res.end('ok'))
  const held: Socket[] = []
  server.on('upgrade', (_req, socket: Socket) => {
    held.push(socket)
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: fedvm-test\r\n\r\n')
  })
  const port = await listen(t, server)
  const client = connect(port, '127.0.0.1')
  client.on('error', () => {})
  t.teardown(() => { client.destroy(); for (const s of held) s.destroy() })
  let answered = ''
  await new Promise<void>((resolve) => {
    client.on('data', (chunk) => { answered += chunk; if (answered.includes('\r\n\r\n')) resolve() })
    client.write('GET /parked HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: fedvm-test\r\n\r\n')
  })
  t.match(answered, /^HTTP\/1.1 101/)
  // Three times the headers timeout: the guard's timer would have closed it by now.
  await new Promise((resolve) => setTimeout(resolve, 3 * LIMITS.headersTimeoutMs))
  t.notOk(client.destroyed, 'still open')
  client.write('ping')
  await waitFor('the bytes to reach the server side', () => held[0]?.read() !== null, 5000)
})
