import { open, readdir, rm, type FileHandle } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { ProtocolError, toProtocolError } from '../errors'
import { fromProblemDocument } from '../http/problem'
import { pinnedRequest, readResponseBody } from '../http/pinned-request'
import { chunkBuffers, type ChunkBuffers } from './chunk-buffers'
import { chunkHasher } from './chunk-hasher'
import { ChunkWriter } from './chunk-writer'
import { parseListing } from './file-listing'
import { hashList, HEX64, manifestsAgree, parseManifest, zeroDigest, type Manifest } from './manifest'
import { DIGEST_HEADER, TOKEN_HEADER, ZERO_HEADER } from './transfer-headers'
import type { SourceTicket } from './ticket'

export interface PullOptions {
  ticket: SourceTicket
  /** Where received files go (the host's incoming directory for this VM). */
  dir: string
  clientCert: { key: string, cert: string }
  parallel: number
  timeoutMs: number
  signal?: AbortSignal
  onProgress?: (progress: PullProgress) => void
}

export interface PullProgress {
  totalBytes: number
  /**
   * Bytes already present and verified when this attempt started (a resumed transfer), and
   * all-zero chunks: the source sends no bytes for them and they stay holes, so a sparse disk stays sparse.
   */
  reusedBytes: number
  fetchedBytes: number
  /** Chunks whose bytes did not match the manifest and were fetched again. */
  refetchedChunks: number
}

export interface PullResult extends PullProgress {
  manifest: Manifest
  /** When the first byte of file data arrived (undefined: nothing needed fetching). */
  firstByteAt?: number
}

const CHUNK_ATTEMPTS = 3

interface Chunk { file: string, index: number, offset: number, length: number, /** the region held bytes before this attempt */ onDisk: boolean }

/**
 * The destination proxy's side of Initiate transfer: read the source's file listing, keep every
 * chunk already on disk whose digest the source knows and that matches (so a retry never copies
 * twice), fetch the others in parallel, verify each one as it arrives against the digest the
 * source computed while reading it, and finally check everything against the source's manifest.
 * dstat is the manifest built from the digests the chunks actually had here, on disk or on arrival.
 */
export async function pullVm (options: PullOptions): Promise<PullResult> {
  const { ticket } = options
  const listing = parseListing(JSON.parse((await get(options, '/v1/transfer/files', 4 * 1024 * 1024)).toString('utf8')), ticket.vmId)
  const progress: PullProgress = { totalBytes: 0, reusedBytes: 0, fetchedBytes: 0, refetchedChunks: 0 }
  const handles = new Map<string, FileHandle>()
  const writers = new Map<string, ChunkWriter>()
  // The digest each chunk actually had on disk or on arrival: dstat is built from these.
  const verified = new Map<string, string[]>(listing.files.map((f) => [f.name, []]))
  const work: Chunk[] = []
  let firstByteAt: number | undefined
  try {
    for (const file of listing.files) {
      progress.totalBytes += file.size
      const handle = await open(join(options.dir, file.name), 'a+').then(async (h) => { await h.close(); return open(join(options.dir, file.name), 'r+') })
      handles.set(file.name, handle)
      writers.set(file.name, await ChunkWriter.open(join(options.dir, file.name), handle))
      const before = (await handle.stat()).size
      if (before !== file.size) await handle.truncate(file.size)
      for (let index = 0; index < file.chunks.length; index++) {
        const offset = index * listing.chunkBytes
        const length = Math.min(listing.chunkBytes, file.size - offset)
        const known = file.chunks[index]
        const chunk: Chunk = { file: file.name, index, offset, length, onDisk: offset < before }
        // Only bytes that were on disk before this attempt can be reused, and only against a digest
        // the source vouched for (a new file is all holes: nothing to check).
        if (known !== null && chunk.onDisk && await chunkDigest(handle, chunk, chunkBuffers('destination', listing.chunkBytes)) === known) {
          progress.reusedBytes += length
          verified.get(file.name)![index] = known
        } else {
          work.push(chunk)
        }
      }
    }
    await removeStrays(options.dir, new Set(listing.files.map((f) => f.name)))
    options.onProgress?.({ ...progress })
    let next = 0
    // After one chunk failed for good, the other workers stop taking chunks: the attempt is over.
    let failed = false
    const worker = async (): Promise<void> => {
      while (next < work.length && !failed) {
        const chunk = work[next++]
        try {
          verified.get(chunk.file)![chunk.index] = await fetchChunk(options, chunk, chunkBuffers('destination', listing.chunkBytes), writers.get(chunk.file)!, progress, () => { firstByteAt ??= Date.now() })
        } catch (err) {
          failed = true
          throw chunkFailure(err, chunk)
        }
        options.onProgress?.({ ...progress })
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, options.parallel) }, worker))
    for (const writer of writers.values()) await writer.finish()
  } finally {
    for (const writer of writers.values()) await writer.close()
    for (const handle of handles.values()) await handle.close().catch(() => {})
  }
  const received: Manifest = {
    vmId: ticket.vmId,
    chunkBytes: listing.chunkBytes,
    files: listing.files.map((file) => {
      const chunks = verified.get(file.name)!
      return { name: file.name, size: file.size, sha256: hashList(chunks), chunks }
    }),
  }
  // The source's manifest: its digests of every chunk, the ones it hashed while sending included.
  const source = parseManifest(JSON.parse((await get(options, '/v1/transfer/manifest', 4 * 1024 * 1024)).toString('utf8')), ticket.vmId)
  if (!manifestsAgree(received, source)) throw new ProtocolError('transfer-failed', 'the received files do not match the source\'s manifest')
  return { ...progress, manifest: received, ...(firstByteAt === undefined ? {} : { firstByteAt }) }
}

/** A chunk's failure, naming the file and byte range (the cause keeps the underlying error). */
function chunkFailure (err: unknown, chunk: { file: string, offset: number, length: number }): ProtocolError {
  const e = toProtocolError(err)
  const where = `${chunk.file} bytes ${chunk.offset}-${chunk.offset + chunk.length - 1}`
  const code = e.code === 'internal' ? 'transfer-failed' : e.code
  return new ProtocolError(code, `${where}: ${e.code === 'internal' ? String((err as Error)?.message ?? err) : e.message}`, { cause: err, retryable: e.retryable, downstreamCode: e.downstreamCode })
}

/** Fetches one chunk until it arrives whole and matches the source's digest; returns the digest. */
async function fetchChunk (options: PullOptions, chunk: Chunk, buffers: ChunkBuffers, writer: ChunkWriter, progress: PullProgress, onData: () => void): Promise<string> {
  const data = await buffers.take(chunk.length)
  try {
    for (let attempt = 1; ; attempt++) {
      const got = await getChunk(options, chunk, data, onData)
      if (got.zero && got.claimed === zeroDigest(chunk.length)) {
        // No bytes moved, and a hole stays a hole: only bytes left from an earlier attempt need overwriting.
        progress.reusedBytes += chunk.length
        if (chunk.onDisk) await writer.write(data.fill(0), chunk.offset)
        return got.claimed
      }
      progress.fetchedBytes += got.size
      if (!got.zero && got.size === chunk.length && got.digest === got.claimed) {
        await writer.write(data, chunk.offset)
        return got.digest
      }
      progress.refetchedChunks++
      if (attempt >= CHUNK_ATTEMPTS) throw new ProtocolError('transfer-failed', `a chunk of ${chunk.file} did not match its digest ${CHUNK_ATTEMPTS} times`)
    }
  } finally {
    buffers.give(data)
  }
}

/** One chunk, copied as it arrives into `data` (a buffer the hashing workers share), hashed off the event loop. */
async function getChunk (options: PullOptions, chunk: Chunk, data: Buffer, onData: () => void): Promise<{ size: number, digest: string, claimed: string, zero: boolean }> {
  const res = await sourceRequest(options, `/v1/transfer/files/${encodeURIComponent(chunk.file)}?chunk=${chunk.index}`)
  if (res.statusCode !== 200) throw await problemOf(res)
  const claimed = String(res.headers[DIGEST_HEADER] ?? '')
  if (!HEX64.test(claimed)) {
    res.resume()
    throw new ProtocolError('bad-response', `the source sent a chunk of ${chunk.file} without its digest`)
  }
  const zero = res.headers[ZERO_HEADER] === '1'
  const room = zero ? 0 : chunk.length
  let size = 0
  let tooMuch = false
  // 'data' listeners, not async iteration: TLS hands over 16 KiB at a time, and a promise per piece costs more than the copy.
  res.on('data', (piece: Buffer) => {
    if (size === 0) onData()
    if (size + piece.length > room) { tooMuch = true; res.destroy(); return }
    size += piece.copy(data, size)
  })
  try {
    await finished(res)
  } catch (err) {
    if (!tooMuch) throw new ProtocolError('transfer-failed', 'the connection to the source proxy broke', { cause: err })
  }
  if (tooMuch) throw new ProtocolError('transfer-failed', 'the source sent more bytes than the chunk')
  const digest = zero || size !== chunk.length ? '' : (await chunkHasher().hash(data, false)).digest
  return { size, digest, claimed, zero }
}

/** The digest of a chunk already on disk (a resumed transfer), read into a pooled buffer and hashed by the workers. */
async function chunkDigest (handle: FileHandle, chunk: { offset: number, length: number }, buffers: ChunkBuffers): Promise<string | undefined> {
  const buf = await buffers.take(chunk.length)
  try {
    const { bytesRead } = await handle.read(buf, 0, chunk.length, chunk.offset)
    return bytesRead === chunk.length ? (await chunkHasher().hash(buf, false)).digest : undefined
  } finally {
    buffers.give(buf)
  }
}

async function get (options: PullOptions, path: string, limit: number): Promise<Buffer> {
  const res = await sourceRequest(options, path)
  if (res.statusCode !== 200) throw await problemOf(res)
  try {
    return await readResponseBody(res, Math.max(limit, 64 * 1024))
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    throw new ProtocolError('transfer-failed', 'the connection to the source proxy broke', { cause: err })
  }
}

function sourceRequest (options: PullOptions, path: string): Promise<IncomingMessage> {
  return pinnedRequest({ url: options.ticket.uri, fingerprint: options.ticket.fingerprint }, {
    method: 'GET',
    path,
    headers: { [TOKEN_HEADER]: options.ticket.token },
    clientCert: options.clientCert,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  })
}

/** The source proxy's refusal (a problem document) as an error here. */
async function problemOf (res: IncomingMessage): Promise<ProtocolError> {
  let doc: unknown
  try { doc = JSON.parse((await readResponseBody(res, 64 * 1024)).toString('utf8')) } catch { doc = undefined }
  return fromProblemDocument(doc, res.statusCode ?? 502)
}

/** Files left from an earlier attempt that the manifest no longer names. */
async function removeStrays (dir: string, keep: Set<string>): Promise<void> {
  for (const name of await readdir(dir)) if (!keep.has(name)) await rm(join(dir, name), { recursive: true, force: true })
}
