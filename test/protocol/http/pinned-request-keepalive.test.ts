import t from 'tap'
import { createServer } from 'node:https'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { readTlsIdentity, writeTlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { pinnedRequest, readResponseBody } from '../../../protocol/http/pinned-request'

// Transfers and control requests failed with partner-unreachable (ECONNRESET) under load.
// Cause: a pooled keep-alive socket stays in the pool past the server's keepAliveTimeout (Node 20 does
// not apply the agent's idle timeout to it), so the next request after a pause goes out on a socket
// the server has closed. The request is sent again on a new socket instead of failing.
t.test('a request after the server closed the idle keep-alive socket succeeds', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-ka-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeTlsIdentity(dir, 'srv')
  const id = await readTlsIdentity(dir)
  let requests = 0
  const server = createServer({ key: id.key, cert: id.cert }, (_req, res) => { requests++; res.end('ok') })
  // Node's default, as the site and proxy servers have (with a shorter one the agent's timer happens to apply).
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const target = { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, fingerprint: id.fingerprint }
  const ask = async (): Promise<string> => (await readResponseBody(await pinnedRequest(target, { method: 'POST', path: '/x', body: Buffer.from('{}'), timeoutMs: 10_000 }), 100)).toString()
  t.equal(await ask(), 'ok', 'first request')
  await new Promise((resolve) => setTimeout(resolve, 6000))
  t.equal(await ask(), 'ok', 'a request after the server closed the pooled socket')
  t.equal(requests, 2, 'each request reached the server once')
})
