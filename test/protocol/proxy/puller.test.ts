import t, * as tap from 'tap'
import { createServer } from 'node:https'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { readTlsIdentity, writeTlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { pinnedRequest, readResponseBody } from '../../../protocol/http/pinned-request'
import { manifestsAgree } from '../../../protocol/proxy/manifest'
import { pullVm, type PullProgress } from '../../../protocol/proxy/puller'
import { TOKEN_HEADER } from '../../../protocol/proxy/transfer-headers'
import { Throttle } from '../../../protocol/proxy/throttle'
import { SourceProxy } from './support/source-proxy'

const MiB = 1024 * 1024

async function tempDir (t: tap.Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function proxyJson (proxy: SourceProxy, path: string): Promise<any> {
  const res = await pinnedRequest({ url: proxy.ticket.uri, fingerprint: proxy.ticket.fingerprint }, {
    method: 'GET', path, headers: { [TOKEN_HEADER]: proxy.ticket.token }, clientCert: proxy.clientCert, timeoutMs: 5000,
  })
  return JSON.parse((await readResponseBody(res, MiB)).toString('utf8'))
}

// A hostile source proxy (an attacker, so a fixture is right here): its listing names files outside
// the VM directory. The destination refuses before writing anything.
t.test('a listing naming a path outside the VM directory is refused, nothing written', async (t) => {
  const dir = await tempDir(t, 'fedvm-pull-')
  await mkdir(join(dir, 'src-keys')); await mkdir(join(dir, 'dst-keys'))
  await writeTlsIdentity(join(dir, 'src-keys'), 'evil'); await writeTlsIdentity(join(dir, 'dst-keys'), 'dst')
  const src = await readTlsIdentity(join(dir, 'src-keys'))
  const dst = await readTlsIdentity(join(dir, 'dst-keys'))
  const server = createServer({ key: src.key, cert: src.cert }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ vmId: 'vm1', chunkBytes: 4096, files: [{ name: '../../escaped', size: 5, chunks: [null] }] }))
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

t.test('the source hashes a chunk when it reads it for sending, not before', async (t) => {
  const dir = await tempDir(t, 'fedvm-pull-lazy-')
  const disk = randomBytes(3 * MiB)
  await writeFile(join(dir, 'disk.img'), disk)
  const proxy = await SourceProxy.start(join(dir, 'src'), 'vm1', MiB, [{ name: 'disk.img', size: disk.length, path: join(dir, 'disk.img') }])
  t.teardown(() => { proxy.state.close(); return proxy.close() })
  t.same((await proxyJson(proxy, '/v1/transfer/files')).files[0].chunks, [null, null, null], 'a prepared transfer has hashed nothing')
  const res = await pinnedRequest({ url: proxy.ticket.uri, fingerprint: proxy.ticket.fingerprint }, {
    method: 'GET', path: '/v1/transfer/files/disk.img?chunk=1', headers: { [TOKEN_HEADER]: proxy.ticket.token }, clientCert: proxy.clientCert, timeoutMs: 5000,
  })
  const body = await readResponseBody(res, 2 * MiB)
  const digest = createHash('sha256').update(disk.subarray(MiB, 2 * MiB)).digest('hex')
  t.ok(body.equals(disk.subarray(MiB, 2 * MiB)), 'chunk 1 is served')
  t.equal(res.headers['fedvm-sha256'], digest, 'with the digest the source computed reading it')
  t.same((await proxyJson(proxy, '/v1/transfer/files')).files[0].chunks, [null, digest, null], 'only the served chunk is hashed')
  const manifest = await proxyJson(proxy, '/v1/transfer/manifest')
  t.equal(manifest.files[0].chunks[2], createHash('sha256').update(disk.subarray(2 * MiB)).digest('hex'), 'the manifest hashes the rest when asked for')
  t.same(proxy.state.token(proxy.ticket.token)?.manifest, manifest, 'and is kept with the token (the source\'s transfer status)')
})

// "disk images are copied sparsely": a chunk of zeros is sent as its digest alone and
// stays a hole at the destination.
t.test('a VM pulled from a real source proxy: byte-exact, zero chunks not sent, holes kept', async (t) => {
  const dir = await tempDir(t, 'fedvm-pull-sparse-')
  const disk = Buffer.concat([randomBytes(MiB), Buffer.alloc(6 * MiB), randomBytes(MiB / 2)])
  const xml = Buffer.from('<domain/>\n')
  await writeFile(join(dir, 'disk.img'), disk)
  await writeFile(join(dir, 'domain.xml'), xml)
  await writeFile(join(dir, 'empty'), '')
  const proxy = await SourceProxy.start(join(dir, 'src'), 'vm1', MiB, [
    { name: 'disk.img', size: disk.length, path: join(dir, 'disk.img') },
    { name: 'domain.xml', size: xml.length, path: join(dir, 'domain.xml') },
    { name: 'empty', size: 0, path: join(dir, 'empty') },
  ])
  t.teardown(() => { proxy.state.close(); return proxy.close() })
  const incoming = join(dir, 'incoming')
  await mkdir(incoming)
  await writeFile(join(incoming, 'stray'), 'left from another transfer')
  const result = await pullVm({ ticket: proxy.ticket, dir: incoming, clientCert: proxy.clientCert, parallel: 3, timeoutMs: 5000 })
  t.equal(result.fetchedBytes, MiB + MiB / 2 + xml.length, 'fetched bytes: the data only')
  t.equal(result.fetchedBytes + result.reusedBytes, disk.length + xml.length, 'the zero chunks count as already present')
  t.ok((await readFile(join(incoming, 'disk.img'))).equals(disk), 'the received disk is byte for byte the source')
  t.ok((await readFile(join(incoming, 'domain.xml'))).equals(xml))
  t.same((await readdir(incoming)).sort(), ['disk.img', 'domain.xml', 'empty'], 'a stray file is removed')
  const { blocks, size } = await stat(join(incoming, 'disk.img'))
  t.ok(blocks * 512 < 3 * MiB, `the hole stayed a hole: ${blocks * 512} bytes allocated for ${size}`)
  const sstat = proxy.state.token(proxy.ticket.token)!.manifest!
  t.ok(manifestsAgree(result.manifest, sstat), 'dstat = sstat')
  t.equal(result.manifest.files[0].sha256, sstat.files[0].sha256)
  t.type(result.firstByteAt, 'number', 'the first byte\'s arrival is reported')
})

t.test('a broken pull resumes: verified chunks reused, a damaged one fetched again, also after the source restarted', async (t) => {
  const dir = await tempDir(t, 'fedvm-pull-resume-')
  const disk = randomBytes(12 * MiB)
  await writeFile(join(dir, 'disk.img'), disk)
  // 4 MiB/s: the pull is still running when it is cut after its fourth chunk.
  const proxy = await SourceProxy.start(join(dir, 'src'), 'vm1', MiB, [{ name: 'disk.img', size: disk.length, path: join(dir, 'disk.img') }], new Throttle(4 * MiB))
  t.teardown(() => { proxy.state.close(); return proxy.close() })
  const incoming = join(dir, 'incoming')
  await mkdir(incoming)
  const abort = new AbortController()
  const cut = (p: PullProgress): void => { if (p.fetchedBytes >= 4 * MiB) abort.abort() }
  await t.rejects(pullVm({ ticket: proxy.ticket, dir: incoming, clientCert: proxy.clientCert, parallel: 2, timeoutMs: 5000, signal: abort.signal, onProgress: cut }), { code: /transfer-failed|partner-unreachable/ }, 'the pull was cut')

  // Damage one byte of a chunk that had arrived intact.
  const handle = await open(join(incoming, 'disk.img'), 'r+')
  let damaged = -1
  for (let i = 0; i < 12 && damaged < 0; i++) {
    const buf = Buffer.alloc(MiB)
    await handle.read(buf, 0, MiB, i * MiB)
    if (buf.equals(disk.subarray(i * MiB, (i + 1) * MiB))) damaged = i
  }
  t.ok(damaged >= 0, 'some chunk had arrived before the cut')
  await handle.write(Buffer.from([disk[damaged * MiB + 10] ^ 0xff]), 0, 1, damaged * MiB + 10)
  await handle.close()

  const again = await pullVm({ ticket: proxy.ticket, dir: incoming, clientCert: proxy.clientCert, parallel: 2, timeoutMs: 5000 })
  t.ok(again.reusedBytes >= 3 * MiB, `the retry reused what had arrived (${again.reusedBytes} bytes)`)
  t.equal(again.fetchedBytes + again.reusedBytes, disk.length, 'every byte either reused or fetched once')
  t.ok((await readFile(join(incoming, 'disk.img'))).equals(disk), 'byte-exact, the damaged byte fetched again')

  // A restarted source still vouches for the chunks it served (their digests are kept with the token).
  await truncate(join(incoming, 'disk.img'), 5 * MiB)
  await proxy.restart()
  const afterRestart = await pullVm({ ticket: proxy.ticket, dir: incoming, clientCert: proxy.clientCert, parallel: 2, timeoutMs: 5000 })
  t.equal(afterRestart.reusedBytes, 5 * MiB, 'what survived on disk is reused after the source restarted')
  t.equal(afterRestart.fetchedBytes, 7 * MiB, 'only the rest is fetched')
  t.ok(manifestsAgree(afterRestart.manifest, proxy.state.token(proxy.ticket.token)!.manifest!), 'dstat = sstat')
  t.ok((await readFile(join(incoming, 'disk.img'))).equals(disk))
})

t.test('a file that changed after the transfer was prepared fails the transfer, naming it; the proxy keeps serving', async (t) => {
  const dir = await tempDir(t, 'fedvm-pull-changed-')
  await writeFile(join(dir, 'disk.img'), randomBytes(2 * MiB))
  const proxy = await SourceProxy.start(join(dir, 'src'), 'vm1', MiB, [{ name: 'disk.img', size: 2 * MiB, path: join(dir, 'disk.img') }])
  t.teardown(() => { proxy.state.close(); return proxy.close() })
  await truncate(join(dir, 'disk.img'), MiB)
  const incoming = join(dir, 'incoming')
  await mkdir(incoming)
  await t.rejects(pullVm({ ticket: proxy.ticket, dir: incoming, clientCert: proxy.clientCert, parallel: 2, timeoutMs: 5000 }), { code: 'transfer-failed', message: /disk\.img changed size since the transfer was prepared/ })
  await rm(join(dir, 'disk.img'))
  await t.rejects(pullVm({ ticket: proxy.ticket, dir: incoming, clientCert: proxy.clientCert, parallel: 2, timeoutMs: 5000 }), { code: 'transfer-failed', message: /disk\.img cannot be opened/ })
  t.equal((await proxyJson(proxy, '/v1/transfer/files')).files[0].name, 'disk.img', 'the proxy still answers')
})
