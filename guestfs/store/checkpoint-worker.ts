// Runs in a worker thread: copies the WAL back into the database file now and then. A checkpoint
// fsyncs the database, which takes milliseconds; done here, it never delays a commit (and so a close()).
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { PAGE_CACHE } from './schema'

const { file, intervalMs } = workerData as { file: string, intervalMs: number }
const db = new Database(file)
db.pragma('busy_timeout = 5000')
db.pragma(`cache_size = ${PAGE_CACHE}`)

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch (err) {
    parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) })
  }
}, intervalMs)

parentPort?.on('message', (message: string) => {
  if (message !== 'stop') return
  clearInterval(timer)
  db.close()
  parentPort?.close()
})
