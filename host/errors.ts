/** Stable codes of hypervisor failures; callers branch on `code`, never on the message. */
export type HypervisorErrorCode =
  | 'CONNECT_FAILED'      // the daemon's socket could not be reached or refused the handshake
  | 'CONNECTION_LOST'     // the connection closed while a call was waiting
  | 'PROTOCOL'            // a reply that does not decode
  | 'REMOTE'              // the hypervisor answered with an error
  | 'DOMAIN_NOT_FOUND'    // no such domain (any more)
  | 'TIMEOUT'             // a call did not answer before its deadline
  | 'ABORTED'             // the caller's AbortSignal fired
  | 'CLOSED'              // used after close()

export class HypervisorError extends Error {
  readonly code: HypervisorErrorCode

  constructor (code: HypervisorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HypervisorError'
    this.code = code
  }
}
