/** WebAssembly pages: the unit a wasm memory is sized in. */
const PAGE = 64 * 1024

/**
 * Buffers for chunks in flight, reused: fresh memory costs a page fault per 4 KiB on first touch,
 * which on these virtual machines weighs as much as hashing. They live in one shared WebAssembly
 * memory, the one way to get memory that is both a SharedArrayBuffer (the hashing workers read it
 * without a copy) and page-aligned (O_DIRECT writes need aligned addresses). A take beyond the
 * slots waits for a give.
 */
export class ChunkBuffers {
  private readonly memory: SharedArrayBuffer
  private readonly free: number[] = []
  private readonly waiting: Array<(slot: number) => void> = []
  readonly slotBytes: number

  constructor (chunkBytes: number, readonly slots: number) {
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new Error(`ChunkBuffers: chunkBytes must be a byte count, got ${chunkBytes}`)
    this.slotBytes = Math.ceil(chunkBytes / PAGE) * PAGE
    const pages = (this.slotBytes / PAGE) * slots
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer
    for (let slot = 0; slot < slots; slot++) this.free.push(slot)
  }

  /** A buffer of `length` bytes (≤ chunkBytes); its contents are whatever the last user left. */
  async take (length: number): Promise<Buffer> {
    if (length > this.slotBytes) throw new Error(`ChunkBuffers: ${length} bytes do not fit a slot of ${this.slotBytes}`)
    const slot = this.free.pop() ?? await new Promise<number>((resolve) => this.waiting.push(resolve))
    return Buffer.from(this.memory, slot * this.slotBytes, length)
  }

  give (buffer: Buffer): void {
    if (buffer.buffer !== this.memory) throw new Error('ChunkBuffers: not a buffer of this pool')
    const slot = Math.floor(buffer.byteOffset / this.slotBytes)
    const next = this.waiting.shift()
    if (next !== undefined) next(slot)
    else this.free.push(slot)
  }
}

const pools = new Map<string, ChunkBuffers>()

/** Chunks a process has in flight at most, per side and chunk size (8 × 8 MiB by default), shared by every transfer. */
const SLOTS = 8

/**
 * The process's buffers for chunks of `chunkBytes` on one side, made on first use. The sides never
 * share a pool: a site pulling from itself would otherwise wait for buffers its own pulls hold.
 */
export function chunkBuffers (side: 'source' | 'destination', chunkBytes: number): ChunkBuffers {
  const key = `${side}:${chunkBytes}`
  let pool = pools.get(key)
  if (pool === undefined) {
    pool = new ChunkBuffers(chunkBytes, SLOTS)
    pools.set(key, pool)
  }
  return pool
}
