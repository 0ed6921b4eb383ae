/**
 * A long-lived child process that does file operations on a guestfs mount for a test and reports
 * the errno each step got. It runs apart from the process that serves the mount (and from the
 * test process), so its synchronous calls are safe, and every call reports exactly which system
 * call failed: open(), write(), fsync() or close(). Driven over IPC by fs-worker-client.ts.
 */
import * as fs from 'node:fs'
import type { WorkerReply, WorkerRequest, PathArg, BytesArg, Failure } from './fs-worker-protocol'

function toPath (path: PathArg): string | Buffer {
  return typeof path === 'string' ? path : Buffer.from(path.base64, 'base64')
}

function toBytes (data: BytesArg): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.base64, 'base64')
}

class StepError extends Error {
  constructor (readonly step: string, readonly errno: NodeJS.ErrnoException) {
    super(`${step}: ${errno.message}`)
  }
}

function step<T> (name: string, call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw new StepError(name, err as NodeJS.ErrnoException)
  }
}

/** open + write + close, like an application reporting one sample. */
function writeFile (path: PathArg, data: BytesArg, flags: string | number = 'w'): void {
  const fd = step('open', () => fs.openSync(toPath(path), flags))
  try {
    const bytes = toBytes(data)
    let done = 0
    while (done < bytes.length) done += step('write', () => fs.writeSync(fd, bytes, done))
  } catch (err) {
    fs.closeSync(fd)
    throw err
  }
  step('close', () => fs.closeSync(fd))
}

function readFd (fd: number): Buffer {
  const chunks: Buffer[] = []
  let position = 0
  for (;;) {
    const chunk = Buffer.alloc(65536)
    const n = step('read', () => fs.readSync(fd, chunk, 0, chunk.length, position))
    if (n === 0) break
    chunks.push(chunk.subarray(0, n))
    position += n
  }
  return Buffer.concat(chunks)
}

/**
 * One writer of the concurrency test: `count` samples, each naming its writer and sequence number
 * three ways (two INTEGER columns and a TEXT tag), so a lost, doubled or mixed row shows.
 */
function writeLoop (path: string, writer: number, count: number): { failures: string[] } {
  const failures: string[] = []
  for (let seq = 0; seq < count; seq++) {
    try {
      writeFile(path, `writer,seq,tag\n${writer},${seq},w${writer}-s${seq}\n`, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC)
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err))
    }
  }
  return { failures }
}

function handle (request: WorkerRequest): unknown {
  switch (request.op) {
    case 'write': return writeFile(request.path, request.data, request.flags)
    case 'writeLoop': return writeLoop(request.path, request.writer, request.count)
    case 'writeThenKill':
      writeFile(request.path, request.data)
      // close() has returned: the row must already be durable when the server dies now.
      process.kill(request.pid, 'SIGKILL')
      return undefined
    case 'open': return step('open', () => fs.openSync(toPath(request.path), request.flags))
    case 'writeFd': return step('write', () => fs.writeSync(request.fd, toBytes(request.data)))
    case 'fsync': return step('fsync', () => fs.fsyncSync(request.fd))
    case 'close': return step('close', () => fs.closeSync(request.fd))
    case 'readFd': return readFd(request.fd).toString('base64')
    case 'read': {
      const fd = step('open', () => fs.openSync(toPath(request.path), 'r'))
      try {
        return readFd(fd).toString('base64')
      } finally {
        fs.closeSync(fd)
      }
    }
    case 'stat': {
      // bigint: the exact nanoseconds, so mtime can be compared with a row's ts in milliseconds.
      const stat = step('stat', () => fs.statSync(toPath(request.path), { bigint: true }))
      return { size: Number(stat.size), mtimeNs: stat.mtimeNs.toString(), isFile: stat.isFile(), isDirectory: stat.isDirectory() }
    }
    case 'readdir': return step('readdir', () => fs.readdirSync(toPath(request.path)))
    case 'rename': return step('rename', () => fs.renameSync(toPath(request.from), toPath(request.to)))
    case 'unlink': return step('unlink', () => fs.unlinkSync(toPath(request.path)))
    case 'mkdir': return step('mkdir', () => fs.mkdirSync(toPath(request.path)))
    case 'rmdir': return step('rmdir', () => fs.rmdirSync(toPath(request.path)))
    case 'symlink': return step('symlink', () => fs.symlinkSync(request.target, toPath(request.path)))
    case 'link': return step('link', () => fs.linkSync(toPath(request.existing), toPath(request.path)))
  }
}

function failureOf (err: unknown): Failure {
  if (err instanceof StepError) return { step: err.step, code: err.errno.code ?? 'UNKNOWN', message: err.message }
  const e = err as NodeJS.ErrnoException
  return { step: 'worker', code: e.code ?? 'UNKNOWN', message: e.message ?? String(err) }
}

process.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply
  try {
    reply = { id: request.id, ok: true, value: handle(request) }
  } catch (err) {
    reply = { id: request.id, ok: false, failure: failureOf(err) }
  }
  process.send?.(reply)
})
process.on('disconnect', () => process.exit(0))
