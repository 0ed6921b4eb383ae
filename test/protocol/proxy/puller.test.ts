import t from 'tap'
import { createServer } from 'node:https'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { readTlsIdentity, writeTlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { hashList } from '../../../protocol/proxy/manifest'
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

// "disk images are copied sparsely": a chunk the manifest says is all zeros is a hole at
// the destination already, so it is neither requested from the source nor written.
t.test('all-zero chunks are not fetched and stay holes at the destination', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-pull-sparse-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'src-keys')); await mkdir(join(dir, 'dst-keys'))
  await writeTlsIdentity(join(dir, 'src-keys'), 'src'); await writeTlsIdentity(join(dir, 'dst-keys'), 'dst')
  const src = await readTlsIdentity(join(dir, 'src-keys'))
  const dst = await readTlsIdentity(join(dir, 'dst-keys'))
  const chunkBytes = 1024 * 1024
  // data, 6 MiB of zeros, data: a disk image with a hole in the middle
  const disk = Buffer.concat([randomBytes(chunkBytes), Buffer.alloc(6 * chunkBytes), randomBytes(chunkBytes / 2)])
  const chunks: string[] = []
  for (let offset = 0; offset < disk.length; offset += chunkBytes) chunks.push(createHash('sha256').update(disk.subarray(offset, offset + chunkBytes)).digest('hex'))
  const ranges: string[] = []
  const server = createServer({ key: src.key, cert: src.cert }, (req, res) => {
    if (req.url === '/v1/transfer/manifest') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ vmId: 'vm1', chunkBytes, files: [{ name: 'disk.img', size: disk.length, sha256: hashList(chunks), chunks }] }))
      return
    }
    const [, from, to] = /bytes=(\d+)-(\d+)/.exec(String(req.headers.range)) ?? []
    ranges.push(`${from}-${to}`)
    res.writeHead(206, { 'content-type': 'application/octet-stream' })
    res.end(disk.subarray(Number(from), Number(to) + 1))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const incoming = join(dir, 'incoming')
  await mkdir(incoming)
  const result = await pullVm({
    ticket: { kind: 'fedvm-source-ticket', vmId: 'vm1', uri: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, fingerprint: src.fingerprint, token: 'tok' },
    dir: incoming, clientCert: { key: dst.key, cert: dst.cert }, parallel: 2, timeoutMs: 5000,
  })
  t.same(ranges.sort(), [`0-${chunkBytes - 1}`, `${7 * chunkBytes}-${disk.length - 1}`], 'only the two data chunks were requested')
  t.equal(result.fetchedBytes, chunkBytes + chunkBytes / 2, 'fetched bytes: the data only')
  t.equal(result.fetchedBytes + result.reusedBytes, disk.length, 'the zero chunks count as already present')
  t.ok((await readFile(join(incoming, 'disk.img'))).equals(disk), 'the received file is byte for byte the source')
  const { blocks, size } = await stat(join(incoming, 'disk.img'))
  t.ok(blocks * 512 < 3 * chunkBytes, `the hole stayed a hole: ${blocks * 512} bytes allocated for ${size}`)
})
