import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

/** A background thread that checkpoints the WAL of one database file (the commit path never does). */
export class Checkpointer {
  private readonly worker: Worker

  constructor (file: string, log: (line: string) => void, intervalMs = 500) {
    this.worker = new Worker(join(__dirname, 'checkpoint-worker.js'), {
      workerData: { file, intervalMs },
      // It holds one SQLite connection and a timer: the smallest heap V8 takes keeps its memory down
      // (guestfs runs inside every VM, where memory is the tenant's).
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 4, codeRangeSizeMb: 1, stackSizeMb: 1 },
    })
    this.worker.on('message', (message: { error?: string }) => {
      if (message.error) log(`checkpoint failed (will retry): ${message.error}`)
    })
    this.worker.on('error', (err) => log(`checkpoint thread died: ${err.message}`))
    this.worker.unref()
  }

  async stop (): Promise<void> {
    const exited = new Promise((resolve) => this.worker.once('exit', resolve))
    // unref'd so it never holds the process open; while stopping it must, or the process could
    // exit right here, before the final checkpoint and close.
    this.worker.ref()
    this.worker.postMessage('stop')
    await exited
  }
}
