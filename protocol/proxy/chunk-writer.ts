import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { FlushPacer } from './flush-pacer'

/** O_DIRECT wants the offset, the length and the buffer's address aligned; 4 KiB covers every block size here. */
const ALIGN = 4096

/**
 * Writes a received file's chunks. Whole aligned chunks go straight to the disk (O_DIRECT): copying
 * them into the page cache and writing them back later costs more CPU than anything else on the
 * destination (measured: ~5x the system time of direct writes). The rest (a file's tail, a
 * filesystem without O_DIRECT such as tmpfs, a buffer the kernel refuses) goes through the page
 * cache, flushed in the background as it grows.
 */
export class ChunkWriter {
  private direct: FileHandle | undefined
  private readonly pacer: FlushPacer

  private constructor (readonly handle: FileHandle, direct: FileHandle | undefined) {
    this.direct = direct
    this.pacer = new FlushPacer(handle)
  }

  /** `handle` is the file opened for reading and writing; a second, direct handle is opened beside it where the filesystem allows. */
  static async open (path: string, handle: FileHandle): Promise<ChunkWriter> {
    const direct = await open(path, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined)
    return new ChunkWriter(handle, direct)
  }

  /** Aligned chunks still go straight to the disk (no EINVAL from the file system or a buffer yet). */
  get writesDirect (): boolean {
    return this.direct !== undefined
  }

  async write (data: Buffer, offset: number): Promise<void> {
    // The aligned part goes direct; a file's unaligned tail through the page cache.
    const aligned = this.direct !== undefined && offset % ALIGN === 0 ? data.length - (data.length % ALIGN) : 0
    if (aligned > 0) {
      try {
        await writeFully(this.direct!, data.subarray(0, aligned), offset)
      } catch (err) {
        // EINVAL: this buffer or filesystem does not do direct I/O after all; the page cache does.
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
        await this.direct?.close().catch(() => {})
        this.direct = undefined
        return await this.write(data, offset)
      }
    }
    if (aligned < data.length) {
      await writeFully(this.handle, data.subarray(aligned), offset + aligned)
      this.pacer.wrote(data.length - aligned)
    }
  }

  /** Every written byte is on disk when this resolves. */
  async finish (): Promise<void> {
    await this.pacer.finish()
  }

  /** Closes the direct handle; the caller closes `handle`. */
  async close (): Promise<void> {
    await this.pacer.settle()
    await this.direct?.close().catch(() => {})
  }
}

async function writeFully (handle: FileHandle, data: Buffer, offset: number): Promise<void> {
  let done = 0
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, offset + done)
    done += bytesWritten
  }
}
