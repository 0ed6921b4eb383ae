import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkBuffers } from '../../../protocol/proxy/chunk-buffers'
import { ChunkHasher } from '../../../protocol/proxy/chunk-hasher'
import { isSafeFileName } from '../../../host/vm-folder/vm-folder'
import { manifestsAgree, parseManifest, zeroDigest } from '../../../protocol/proxy/manifest'
import { SourceTransfer } from '../../../protocol/proxy/source-transfer'

const digest = '0'.repeat(64)
const file = (name: string): unknown => ({ name, size: 10, sha256: digest, chunks: [digest] })

t.test('file names in a manifest cannot leave the VM directory', async (t) => {
  for (const name of ['../x', '..', '.', '/etc/passwd', 'a/b', 'a\\b', '.hidden', '', 'x\u0000y', 'a/../../b', '..%2F']) {
    t.throws(() => parseManifest({ vmId: 'vm1', chunkBytes: 4096, files: [file(name)] }, 'vm1'), { code: 'bad-manifest' }, JSON.stringify(name))
  }
  for (const name of ['disk.qcow2', 'domain.xml', 'state.save', 'nvram_VARS.fd']) t.ok(isSafeFileName(name), name)
})

t.test('a manifest is checked field by field', async (t) => {
  t.throws(() => parseManifest({ vmId: 'vm2', chunkBytes: 4096, files: [] }, 'vm1'), { code: 'bad-manifest' }, 'another VM')
  t.throws(() => parseManifest({ vmId: 'vm1', chunkBytes: 4096, files: [file('a'), file('a')] }, 'vm1'), { code: 'bad-manifest' }, 'a name twice')
  t.throws(() => parseManifest({ vmId: 'vm1', chunkBytes: 4096, files: [{ name: 'a', size: 10, sha256: 'x', chunks: [digest] }] }, 'vm1'), { code: 'bad-manifest' }, 'a bad digest')
  t.throws(() => parseManifest({ vmId: 'vm1', chunkBytes: 4096, files: [{ name: 'a', size: 9000, sha256: digest, chunks: [digest] }] }, 'vm1'), { code: 'bad-manifest' }, 'too few chunk digests')
  t.throws(() => parseManifest({ vmId: 'vm1', chunkBytes: 4096, files: [{ name: 'a', size: -1, sha256: digest, chunks: [] }] }, 'vm1'), { code: 'bad-manifest' }, 'a negative size')
})

t.test('a source transfer\'s manifest: chunk digests that agree with sha256sum, the hash list over them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-manifest-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = Buffer.alloc(10_000).map((_, i) => i % 251)
  await writeFile(join(dir, 'f'), data)
  await writeFile(join(dir, 'z'), Buffer.alloc(5000))
  const transfer = new SourceTransfer('v', { chunkBytes: 4096, files: [{ name: 'f', size: 10_000, path: join(dir, 'f') }, { name: 'z', size: 5000, path: join(dir, 'z') }] })
  const manifest = await transfer.manifest()
  const m = manifest.files[0]
  t.equal(m.size, 10_000)
  const chunks = [0, 4096, 8192].map((o) => createHash('sha256').update(data.subarray(o, o + 4096)))
  t.same(m.chunks, chunks.map((h) => h.copy().digest('hex')))
  t.equal(m.sha256, createHash('sha256').update(Buffer.concat(chunks.map((h) => h.digest()))).digest('hex'))
  t.same(manifest.files[1].chunks, [zeroDigest(4096), zeroDigest(904)], 'zero chunks: the digest of zeros')
  t.equal(zeroDigest(904), createHash('sha256').update(Buffer.alloc(904)).digest('hex'))
  t.same(transfer.listing().files.map((f) => f.chunks), manifest.files.map((f) => f.chunks), 'the listing now knows every digest')
  t.ok(manifestsAgree(manifest, JSON.parse(JSON.stringify(manifest))))
  t.notOk(manifestsAgree(manifest, { ...manifest, files: [{ ...m, sha256: digest }, manifest.files[1]] }))
  t.notOk(manifestsAgree(manifest, { ...manifest, files: [] }))
})

t.test('the hashing workers: SHA-256 of shared buffers, zeros found by looking at every byte', async (t) => {
  const hasher = new ChunkHasher(2)
  t.teardown(() => hasher.close())
  const size = 3 * 1024 * 1024 + 5
  const buffers = new ChunkBuffers(size, 5)
  const zeros = (await buffers.take(size)).fill(0)
  t.same(await hasher.hash(zeros, true), { zero: true, digest: '' }, 'all zeros')
  t.same(await hasher.hash(zeros, false), { zero: false, digest: zeroDigest(size) }, 'hashed when zeros are not asked about')
  const answers = await Promise.all([0, 1024 * 1024 - 1, 1024 * 1024, size - 1].map(async (at) => {
    const b = (await buffers.take(size)).fill(0)
    b[at] = 1
    return { at, expected: createHash('sha256').update(b).digest('hex'), got: await hasher.hash(b, true) }
  }))
  for (const { at, expected, got } of answers) t.same(got, { zero: false, digest: expected }, `a byte at ${at}`)
  const plain = Buffer.from('not shared')
  t.same(await hasher.hash(plain, true), { zero: false, digest: createHash('sha256').update(plain).digest('hex') }, 'a buffer the workers cannot share is hashed in place')
})

t.test('chunk buffers: page-aligned slots, reused, a take beyond the slots waits for a give', async (t) => {
  const buffers = new ChunkBuffers(100_000, 2)
  t.equal(buffers.slotBytes, 131072, 'slots are whole 64 KiB pages')
  const a = await buffers.take(100_000)
  const b = await buffers.take(5)
  t.ok(a.buffer instanceof SharedArrayBuffer, 'shared with the hashing workers')
  t.same([a.byteOffset % 4096, b.byteOffset % 4096], [0, 0], 'aligned for O_DIRECT')
  t.not(a.byteOffset, b.byteOffset)
  let third: Buffer | undefined
  const waiting = buffers.take(10).then((buf) => { third = buf })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(third, undefined, 'no slot free: the take waits')
  buffers.give(a)
  await waiting
  t.equal(third!.byteOffset, a.byteOffset, 'and gets the slot given back')
  await t.rejects(buffers.take(200_000), /do not fit/, 'more than a slot is refused')
  t.throws(() => buffers.give(Buffer.alloc(5)), /not a buffer of this pool/)
})
