import type { FileHandle } from 'node:fs/promises'

/** Written bytes after which a file's data is flushed in the background. */
const FLUSH_EVERY = 64 * 1024 * 1024

/**
 * Flushes a received file's data while the transfer runs, so the final sync does not start the
 * whole write-back only after the last byte (a few GiB stay under the kernel's own flushing
 * threshold). One fdatasync at a time per file, never awaited on the write path; its failure is
 * kept and thrown by finish().
 */
export class FlushPacer {
  private written = 0
  private running: Promise<void> | undefined
  private failure: unknown

  constructor (private readonly handle: FileHandle, private readonly every = FLUSH_EVERY) {}

  wrote (bytes: number): void {
    this.written += bytes
    if (this.written < this.every || this.running !== undefined) return
    this.written = 0
    this.running = this.handle.datasync().catch((err) => { this.failure ??= err }).finally(() => { this.running = undefined })
  }

  /** Waits for a flush under way (before the file is closed on failure). */
  async settle (): Promise<void> {
    await this.running
  }

  /** Waits for a flush under way, then syncs the file: its bytes are on disk when this resolves. */
  async finish (): Promise<void> {
    await this.running
    if (this.failure !== undefined) throw this.failure
    await this.handle.sync()
  }
}
