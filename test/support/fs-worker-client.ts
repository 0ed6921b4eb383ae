import { spawn, type ChildProcess } from 'node:child_process'
import { distFile } from './dist-paths'
import type { WorkerOperation, WorkerReply } from './fs-worker-protocol'

export type { PathArg, BytesArg } from './fs-worker-protocol'

/**
 * Drives one fs-worker child over IPC: file operations on a guestfs mount done by another
 * process, each answered with its result or with the failing system call and its errno.
 */
export class FsWorker {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (reply: WorkerReply) => void, reject: (err: Error) => void }>()
  private exited = false

  private constructor (readonly child: ChildProcess) {
    child.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id)
      this.pending.delete(reply.id)
      waiter?.resolve(reply)
    })
    child.once('exit', (code, signal) => {
      this.exited = true
      for (const waiter of this.pending.values()) waiter.reject(new Error(`fs-worker exited (code ${code}, signal ${signal})`))
      this.pending.clear()
    })
  }

  static start (): FsWorker {
    const child = spawn(process.execPath, [distFile('test', 'support', 'fs-worker.js')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    return new FsWorker(child)
  }

  run (operation: WorkerOperation): Promise<WorkerReply> {
    if (this.exited) return Promise.reject(new Error('fs-worker has exited'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.child.send({ ...operation, id })
    })
  }

  /** 'ok', or the failing call and its errno, e.g. 'close EINVAL': what the application saw. */
  async outcome (operation: WorkerOperation): Promise<string> {
    const reply = await this.run(operation)
    return reply.ok ? 'ok' : `${reply.failure.step} ${reply.failure.code}`
  }

  /** The operation's result; throws with the errno if it failed. */
  async value<T = unknown> (operation: WorkerOperation): Promise<T> {
    const reply = await this.run(operation)
    if (!reply.ok) throw Object.assign(new Error(`${operation.op} failed: ${reply.failure.message}`), { code: reply.failure.code })
    return reply.value as T
  }

  /** The bytes of a file, read through the mount by this worker. */
  async read (path: string): Promise<Buffer> {
    return Buffer.from(await this.value<string>({ op: 'read', path }), 'base64')
  }

  /** size, mtime as exact nanoseconds (bigint), and the file type. */
  async stat (path: string): Promise<{ size: number, mtimeNs: bigint, isFile: boolean, isDirectory: boolean }> {
    const stat = await this.value<{ size: number, mtimeNs: string, isFile: boolean, isDirectory: boolean }>({ op: 'stat', path })
    return { ...stat, mtimeNs: BigInt(stat.mtimeNs) }
  }

  /** Ends the worker (which closes any file it still holds open) and waits for it to exit. */
  async stop (): Promise<void> {
    if (this.exited) return
    const exit = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill('SIGKILL')
    await exit
  }
}
