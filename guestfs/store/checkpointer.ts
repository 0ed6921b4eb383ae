import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

/**
 * A background thread that checkpoints the WAL of one database file (the commit path never does).
 * If the thread dies, `onDied` runs so the store can checkpoint by itself again (else the WAL would
 * grow without end), and stop() still resolves.
 */
export class Checkpointer {
  private readonly worker: Worker
  private readonly exited: Promise<void>
  private stopping = false

  constructor (file: string, log: (line: string) => void, onDied: () => void, intervalMs = 500) {
    this.worker = new Worker(join(__dirname, 'checkpoint-worker.js'), { workerData: { file, intervalMs } })
    // Listened for from the start: a thread that died before stop() must not leave stop() waiting.
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()))
    this.worker.on('message', (message: { error?: string }) => {
      if (message.error) log(`checkpoint failed (will retry): ${message.error}`)
    })
    this.worker.on('error', (err) => log(`checkpoint thread died: ${err.message}; checkpoints now run with commits`))
    this.worker.once('exit', () => { if (!this.stopping) onDied() })
    this.worker.unref()
  }

  async stop (): Promise<void> {
    this.stopping = true
    // unref'd so it never holds the process open; while stopping it must, or the process could
    // exit right here, before the final checkpoint and close.
    this.worker.ref()
    this.worker.postMessage('stop')
    await this.exited
  }
}
