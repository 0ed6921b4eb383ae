import { open, type FileHandle } from 'node:fs/promises'
import { ProtocolError } from '../errors'
import type { FileListing } from './file-listing'
import { chunkBuffers } from './chunk-buffers'
import { chunkHasher } from './chunk-hasher'
import { hashList, zeroDigest, type Manifest } from './manifest'
import { chunkCount, type PlannedFile, type TransferPlan } from './transfer-plan'

/** A chunk as served: its SHA-256, and its bytes unless they are all zeros (a hole is not sent). */
export interface ServedChunk {
  digest: string
  length: number
  data: Buffer | null
  /** Hands the chunk's buffer back once it is sent (or the send failed). */
  release: () => void
}

/**
 * The source side of one transfer: serves chunks of the planned files and hashes each one as it is
 * read for sending, so the manifest grows while the data flows and the first byte leaves without
 * waiting for the whole VM to be hashed. Chunks never served (the source restarted, or the
 * destination reused them) are hashed from disk when the whole manifest is asked for.
 */
export class SourceTransfer {
  private readonly digests = new Map<string, Array<string | undefined>>()
  private readonly byName: Map<string, PlannedFile>

  constructor (readonly vmId: string, private readonly plan: TransferPlan) {
    this.byName = new Map(plan.files.map((file) => [file.name, file]))
    for (const file of plan.files) {
      const count = chunkCount(file.size, plan.chunkBytes)
      const kept = file.chunks?.length === count ? file.chunks : []
      this.digests.set(file.name, Array.from({ length: count }, (_, i) => kept[i] ?? undefined))
    }
  }

  /** The plan with the digests known now: what is kept with the token. */
  snapshot (): TransferPlan {
    return {
      chunkBytes: this.plan.chunkBytes,
      files: this.plan.files.map(({ name, size, path }) => ({ name, size, path, chunks: Array.from(this.digests.get(name)!, (d) => d ?? null) })),
    }
  }

  /** The files and the digests known so far (null: not hashed yet). */
  listing (): FileListing {
    return {
      vmId: this.vmId,
      chunkBytes: this.plan.chunkBytes,
      files: this.plan.files.map((file) => ({ name: file.name, size: file.size, chunks: Array.from(this.digests.get(file.name)!, (d) => d ?? null) })),
    }
  }

  has (name: string): boolean {
    return this.byName.has(name)
  }

  /** Reads and hashes chunk `index` of `name`; the caller sends it. */
  async chunk (name: string, index: number): Promise<ServedChunk> {
    const file = this.byName.get(name)
    if (file === undefined) throw new ProtocolError('unknown-operation', 'no such file in this transfer')
    const count = this.digests.get(name)!.length
    if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new ProtocolError('bad-request', `chunk must be an integer from 0 to ${count - 1}`)
    const handle = await openPlanned(file)
    try {
      return await this.readChunk(handle, file, index)
    } finally {
      await handle.close()
    }
  }

  /** The whole manifest: digests of the chunks served so far, and the others hashed now. */
  async manifest (): Promise<Manifest> {
    for (const file of this.plan.files) {
      const known = this.digests.get(file.name)!
      if (known.every((d) => d !== undefined)) continue
      const handle = await openPlanned(file)
      try {
        for (let index = 0; index < known.length; index++) if (known[index] === undefined) (await this.readChunk(handle, file, index)).release()
      } finally {
        await handle.close()
      }
    }
    return {
      vmId: this.vmId,
      chunkBytes: this.plan.chunkBytes,
      files: this.plan.files.map((file) => {
        const chunks = this.digests.get(file.name)! as string[]
        return { name: file.name, size: file.size, sha256: hashList(chunks), chunks }
      }),
    }
  }

  private async readChunk (handle: FileHandle, file: PlannedFile, index: number): Promise<ServedChunk> {
    const offset = index * this.plan.chunkBytes
    const length = Math.min(this.plan.chunkBytes, file.size - offset)
    const buffers = chunkBuffers('source', this.plan.chunkBytes)
    const data = await buffers.take(length)
    try {
      let done = 0
      while (done < length) {
        const { bytesRead } = await handle.read(data, done, length - done, offset + done)
        if (bytesRead === 0) throw new ProtocolError('transfer-failed', `${file.name} is shorter than when the transfer was prepared`)
        done += bytesRead
      }
      const hashed = await chunkHasher().hash(data, true)
      const digest = hashed.zero ? zeroDigest(length) : hashed.digest
      this.digests.get(file.name)![index] = digest
      let released = false
      return { digest, length, data: hashed.zero ? null : data, release: () => { if (!released) { released = true; buffers.give(data) } } }
    } catch (err) {
      buffers.give(data)
      throw err
    }
  }
}

async function openPlanned (file: PlannedFile): Promise<FileHandle> {
  let handle: FileHandle
  try {
    handle = await open(file.path, 'r')
  } catch (err) {
    throw new ProtocolError('transfer-failed', `${file.name} cannot be opened`, { cause: err })
  }
  const { size } = await handle.stat()
  if (size !== file.size) {
    await handle.close()
    throw new ProtocolError('transfer-failed', `${file.name} changed size since the transfer was prepared (${file.size} → ${size} bytes)`)
  }
  return handle
}
