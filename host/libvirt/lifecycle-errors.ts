/** Stable codes of VM life-cycle failures (define, save, restore, ...); callers branch on `code`. */
export type LifecycleErrorCode =
  | 'VIRSH_FAILED'      // virsh exited non-zero (its stderr is in the message)
  | 'UNSUPPORTED_VM'    // the domain has something a cold migration cannot carry (a block-device disk, ...)
  | 'NOT_RUNNING'       // the domain did not reach the running state after start or restore

export class LifecycleError extends Error {
  readonly code: LifecycleErrorCode

  constructor (code: LifecycleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LifecycleError'
    this.code = code
  }
}
