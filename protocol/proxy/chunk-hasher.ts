import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

/** A chunk's SHA-256, or that it is all zeros (then its digest is the one of zeros, looked up, not computed). */
export interface ChunkHash {
  digest: string
  zero: boolean
}

// Runs in each worker: zeros are found by comparison (memcmp), everything else is hashed.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const ZEROS = Buffer.alloc(1024 * 1024)
function isZero (data) {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const part = data.subarray(at, at + ZEROS.length)
    if (!part.equals(ZEROS.subarray(0, part.length))) return false
  }
  return true
}
parentPort.on('message', ({ id, buffer, offset, length, zeros }) => {
  try {
    const data = Buffer.from(buffer, offset, length)
    if (zeros && isZero(data)) parentPort.postMessage({ id, zero: true })
    else parentPort.postMessage({ id, zero: false, digest: createHash('sha256').update(data).digest('hex') })
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) })
  }
})
`

interface Pending { worker: Worker, resolve: (hash: ChunkHash) => void, reject: (err: Error) => void }

/**
 * SHA-256 of chunks off the event loop: one loop that also runs TLS for the transfer is the ceiling
 * otherwise (hashing is the largest share of a proxy's CPU). Chunks live in SharedArrayBuffers, so
 * nothing is copied to or from the workers. A worker keeps the process alive only while it has work.
 */
export class ChunkHasher {
  private readonly workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private readonly busy = new Map<Worker, number>()
  private nextId = 0
  private nextWorker = 0

  constructor (private readonly size = Math.max(1, Math.min(2, availableParallelism()))) {}

  /** The chunk's SHA-256; with `zeros`, a chunk of zeros is reported as such instead. `data` should live in a SharedArrayBuffer (chunk-buffers.ts), else it is hashed here. */
  async hash (data: Buffer, zeros: boolean): Promise<ChunkHash> {
    if (!(data.buffer instanceof SharedArrayBuffer)) return { zero: false, digest: createHash('sha256').update(data).digest('hex') }
    const id = this.nextId++
    const worker = this.worker()
    const answer = new Promise<ChunkHash>((resolve, reject) => this.pending.set(id, { worker, resolve, reject }))
    this.setBusy(worker, 1)
    worker.postMessage({ id, buffer: data.buffer, offset: data.byteOffset, length: data.length, zeros })
    return await answer
  }

  /** Starts the workers now, so the first chunk does not wait for a worker to boot. */
  warm (): void {
    while (this.workers.length < this.size) this.worker()
  }

  async close (): Promise<void> {
    const workers = this.workers.splice(0)
    await Promise.all(workers.map((w) => w.terminate()))
  }

  private worker (): Worker {
    if (this.workers.length < this.size) {
      const worker = new Worker(WORKER_SOURCE, { eval: true })
      worker.unref()
      worker.on('message', (m: { id: number, zero?: boolean, digest?: string, error?: string }) => {
        const p = this.pending.get(m.id)
        if (p === undefined) return
        this.pending.delete(m.id)
        this.setBusy(worker, -1)
        if (m.error !== undefined) p.reject(new Error(`hashing a chunk failed: ${m.error}`))
        else p.resolve({ zero: m.zero === true, digest: m.digest ?? '' })
      })
      worker.on('error', (err) => this.fail(worker, err))
      worker.on('exit', (code) => this.fail(worker, new Error(`a hashing worker exited (${code})`)))
      this.workers.push(worker)
      return worker
    }
    return this.workers[this.nextWorker++ % this.workers.length]
  }

  private setBusy (worker: Worker, delta: number): void {
    const before = this.busy.get(worker) ?? 0
    const after = before + delta
    this.busy.set(worker, after)
    if (before === 0 && after > 0) worker.ref()
    if (before > 0 && after === 0) worker.unref()
  }

  /** A worker that died fails its own waiting chunks and is replaced on next use. */
  private fail (worker: Worker, err: Error): void {
    const at = this.workers.indexOf(worker)
    if (at >= 0) this.workers.splice(at, 1)
    this.busy.delete(worker)
    for (const [id, p] of this.pending) {
      if (p.worker !== worker) continue
      this.pending.delete(id)
      p.reject(err)
    }
  }
}

let processHasher: ChunkHasher | undefined

/** The process's hashing workers, shared by every transfer (like libuv's thread pool), started on first use. */
export function chunkHasher (): ChunkHasher {
  processHasher ??= new ChunkHasher()
  return processHasher
}
