/** Stable codes of hypervisor failures (statistics and VM life cycle); callers branch on `code`, never on the message. */
export type HypervisorErrorCode =
  | 'CONNECT_FAILED'      // the daemon's socket could not be reached or refused the handshake
  | 'CONNECTION_LOST'     // the connection closed while a call was waiting
  | 'PROTOCOL'            // a reply that does not decode
  | 'REMOTE'              // the hypervisor answered with an error
  | 'DOMAIN_NOT_FOUND'    // no such domain (any more)
  | 'TIMEOUT'             // a call did not answer before its deadline
  | 'ABORTED'             // the caller's AbortSignal fired
  | 'CLOSED'              // used after close()
  | 'VIRSH_FAILED'        // a life-cycle virsh call exited non-zero (its stderr is in the message)
  | 'UNSUPPORTED_VM'      // the domain has something a cold migration cannot carry (a block-device disk, ...)
  | 'NOT_RUNNING'         // the domain did not reach the running state after start or restore

export class HypervisorError extends Error {
  readonly code: HypervisorErrorCode

  constructor (code: HypervisorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HypervisorError'
    this.code = code
  }
}
