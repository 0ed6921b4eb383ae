import t from 'tap'
import { createServer } from 'node:https'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { readTlsIdentity, writeTlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { pullVm } from '../../../protocol/proxy/puller'

// A hostile source proxy (an attacker, so a fixture is right here): its manifest names files outside
// the VM directory. The destination refuses before writing anything.
t.test('a manifest naming a path outside the VM directory is refused, nothing written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-pull-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'src-keys')); await mkdir(join(dir, 'dst-keys'))
  await writeTlsIdentity(join(dir, 'src-keys'), 'evil'); await writeTlsIdentity(join(dir, 'dst-keys'), 'dst')
  const src = await readTlsIdentity(join(dir, 'src-keys'))
  const dst = await readTlsIdentity(join(dir, 'dst-keys'))
  const digest = 'a'.repeat(64)
  const server = createServer({ key: src.key, cert: src.cert }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ vmId: 'vm1', chunkBytes: 4096, files: [{ name: '../../escaped', size: 5, sha256: digest, chunks: [digest] }] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const incoming = join(dir, 'vms', '.incoming', 'vm1')
  await mkdir(incoming, { recursive: true })
  await t.rejects(pullVm({
    ticket: { kind: 'fedvm-source-ticket', vmId: 'vm1', uri: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, fingerprint: src.fingerprint, token: 'tok' },
    dir: incoming, clientCert: { key: dst.key, cert: dst.cert }, parallel: 2, timeoutMs: 5000,
  }), { code: 'bad-manifest' })
  t.same(await readdir(incoming), [], 'nothing written in the incoming directory')
  t.notOk(existsSync(join(dir, 'vms', 'escaped')) || existsSync(join(dir, 'escaped')), 'nothing written outside it')

  // The pin: the same server with a fingerprint that is not its own is never sent the token.
  await t.rejects(pullVm({
    ticket: { kind: 'fedvm-source-ticket', vmId: 'vm1', uri: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, fingerprint: dst.fingerprint, token: 'tok' },
    dir: incoming, clientCert: { key: dst.key, cert: dst.cert }, parallel: 2, timeoutMs: 5000,
  }), { code: 'partner-unreachable' }, 'a certificate that does not match the pinned fingerprint')
})
