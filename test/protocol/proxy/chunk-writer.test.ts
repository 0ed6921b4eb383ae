import t, * as tap from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkBuffers } from '../../../protocol/proxy/chunk-buffers'
import { ChunkWriter } from '../../../protocol/proxy/chunk-writer'

const MiB = 1024 * 1024
const REPO = join(__dirname, '..', '..', '..')

async function writeChunks (t: tap.Test, take: (length: number) => Promise<Buffer>): Promise<{ writer: ChunkWriter, same: boolean }> {
  const dir = await mkdtemp(join(REPO, '.fedvm-chunk-writer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = randomBytes(2 * MiB + 1234)
  const path = join(dir, 'disk.img')
  const handle = await open(path, 'w+')
  await handle.truncate(data.length)
  const writer = await ChunkWriter.open(path, handle)
  // Out of order, as parallel fetches finish: the tail chunk (unaligned length) first.
  for (const offset of [2 * MiB, 0, MiB]) {
    const chunk = await take(Math.min(MiB, data.length - offset))
    data.copy(chunk, 0, offset, offset + chunk.length)
    await writer.write(chunk, offset)
  }
  await writer.finish()
  await writer.close()
  await handle.close()
  return { writer, same: (await readFile(path)).equals(data) }
}

t.test('aligned chunks from the page-aligned buffers go straight to the disk; the file is byte for byte what was written', async (t) => {
  const buffers = new ChunkBuffers(MiB, 3)
  const { writer, same } = await writeChunks(t, (length) => buffers.take(length))
  t.ok(writer.writesDirect, 'O_DIRECT took the aligned chunks')
  t.ok(same, 'the unaligned tail included')
})

t.test('a buffer O_DIRECT refuses (not page-aligned): the page cache takes it and the rest, nothing lost', async (t) => {
  // A 1 MiB Buffer.alloc comes from malloc: 16 bytes past a page boundary, which O_DIRECT refuses with EINVAL.
  const { writer, same } = await writeChunks(t, async (length) => Buffer.alloc(length))
  t.notOk(writer.writesDirect, 'direct writes given up after EINVAL')
  t.ok(same)
})
