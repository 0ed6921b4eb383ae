/** The messages between a test and its fs-worker child (types only). */

/** A path as text, or as raw bytes (for names that are not valid UTF-8). */
export type PathArg = string | { base64: string }
/** File content as UTF-8 text, or as raw bytes. */
export type BytesArg = string | { base64: string }

export type WorkerOperation =
  | { op: 'write', path: PathArg, data: BytesArg, flags?: string | number }
  | { op: 'writeLoop', path: string, writer: number, count: number }
  | { op: 'writeThenKill', path: string, data: BytesArg, pid: number }
  | { op: 'open', path: PathArg, flags: string | number }
  | { op: 'writeFd', fd: number, data: BytesArg }
  | { op: 'fsync', fd: number }
  | { op: 'close', fd: number }
  | { op: 'readFd', fd: number }
  | { op: 'read', path: PathArg }
  | { op: 'stat', path: PathArg }
  | { op: 'readdir', path: PathArg }
  | { op: 'rename', from: PathArg, to: PathArg }
  | { op: 'unlink', path: PathArg }
  | { op: 'mkdir', path: PathArg }
  | { op: 'rmdir', path: PathArg }
  | { op: 'symlink', target: string, path: PathArg }
  | { op: 'link', existing: PathArg, path: PathArg }

export type WorkerRequest = WorkerOperation & { id: number }

/** Which system call failed and its errno code (e.g. step 'close', code 'EINVAL'). */
export interface Failure {
  step: string
  code: string
  message: string
}

export type WorkerReply =
  | { id: number, ok: true, value: unknown }
  | { id: number, ok: false, failure: Failure }
