/**
 * Every error the federation protocol reports to another site. Each code is stable: partners and
 * scripts match on it. `status` is the HTTP status of the problem document (RFC 9457) and `retryable`
 * says whether the same request may succeed later. Codes are mapped to problem documents at the HTTP
 * boundary (http/problem.ts) and nowhere else.
 */
export const PROBLEMS = {
  'bad-request': { status: 400, retryable: false, title: 'The request is malformed' },
  'request-too-large': { status: 413, retryable: false, title: 'The request body is too large' },
  'unknown-operation': { status: 404, retryable: false, title: 'No such operation' },
  'unknown-sender': { status: 401, retryable: false, title: 'The sender is not a known partner' },
  'bad-signature': { status: 401, retryable: false, title: 'The signature does not verify' },
  'stale-timestamp': { status: 401, retryable: false, title: 'The request timestamp is outside the accepted window' },
  'replayed-message': { status: 409, retryable: false, title: 'This message id was already seen' },
  'misdirected': { status: 421, retryable: false, title: 'The request is addressed to another site' },
  'tampered-hop-chain': { status: 401, retryable: false, title: 'A hop record of the delegation chain does not verify' },
  'hop-budget-exhausted': { status: 508, retryable: false, title: 'The hop budget is exhausted' },
  'loop-detected': { status: 508, retryable: false, title: 'The request already passed this site' },
  'not-permitted': { status: 403, retryable: false, title: 'Site policy does not allow this request' },
  'unknown-vm': { status: 404, retryable: false, title: 'This site is not responsible for the VM' },
  'no-placement': { status: 409, retryable: true, title: 'No destination can take the VM' },
  'token-unknown': { status: 403, retryable: false, title: 'The transfer token is not valid here' },
  'token-foreign': { status: 403, retryable: false, title: 'The transfer token is bound to another VM or destination' },
  'token-expired': { status: 410, retryable: false, title: 'The transfer token has expired' },
  'token-spent': { status: 410, retryable: false, title: 'The transfer token was already used' },
  'bad-manifest': { status: 422, retryable: false, title: 'The transfer manifest is invalid' },
  'transfer-failed': { status: 502, retryable: true, title: 'The transfer did not complete' },
  'transfer-cancelled': { status: 409, retryable: false, title: 'The transfer was cancelled' },
  'no-room': { status: 507, retryable: true, title: 'The destination host has no room left' },
  'partner-unreachable': { status: 502, retryable: true, title: 'A partner site could not be reached' },
  'downstream-failed': { status: 502, retryable: false, title: 'The request failed further along the chain' },
  'bad-response': { status: 502, retryable: false, title: 'A partner answered with an unsigned or invalid response' },
  'forced-migration-failed': { status: 409, retryable: true, title: 'The forced migration could be neither performed nor escalated' },
  'unsupported-vm': { status: 422, retryable: false, title: 'The VM has parts a cold migration cannot carry' },
  'stale-version': { status: 409, retryable: false, title: 'The descriptor update is not newer than the descriptor in force' },
  'wrong-run-state': { status: 409, retryable: false, title: 'The VM\'s run state does not allow this change' },
  'internal': { status: 500, retryable: true, title: 'Internal error' },
} as const

export type ProblemCode = keyof typeof PROBLEMS

/**
 * One item of a list request refused on its own (a delivery of a monitoring batch): its place in
 * the list, its id when it has one, and why. A refusal that lists its items says the others were
 * fine, so the sender can send them again without the refused ones.
 */
export interface RefusedItem {
  index: number
  id?: string
  code: ProblemCode
  retryable: boolean
  detail: string
}

/**
 * A protocol failure. `message` is the public detail and must never name a host, a path or any
 * other internal detail (location unawareness); put those in `cause`, which is only logged.
 */
export class ProtocolError extends Error {
  readonly code: ProblemCode
  readonly retryable: boolean
  /** For downstream-failed: the code the partner reported, passed on without its detail. */
  readonly downstreamCode?: string
  /** For a refused list: every item refused on its own (the rest of the list was fine). */
  readonly refused?: readonly RefusedItem[]

  constructor (code: ProblemCode, message: string, options?: { cause?: unknown, retryable?: boolean, downstreamCode?: string, refused?: readonly RefusedItem[] }) {
    super(message, { cause: options?.cause })
    this.name = 'ProtocolError'
    this.code = code
    this.retryable = options?.retryable ?? PROBLEMS[code].retryable
    this.downstreamCode = options?.downstreamCode
    this.refused = options?.refused
  }

  get status (): number {
    return PROBLEMS[this.code].status
  }
}

export function isProblemCode (value: unknown): value is ProblemCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(PROBLEMS, value)
}

/**
 * The code of the site where the failure happened: the partner's own code when a chain passed it on
 * as downstream-failed, else this error's code. What a site decides on an answer (refused, cancelled,
 * unknown operation) depends on that code, not on how many hops wrapped it.
 */
export function originCode (err: ProtocolError): string {
  return err.code === 'downstream-failed' ? (err.downstreamCode ?? err.code) : err.code
}

/** Anything thrown becomes a ProtocolError; unknown failures are `internal` with no detail shown. */
export function toProtocolError (err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err
  return new ProtocolError('internal', 'internal error', { cause: err })
}

/** A site configuration that cannot be used: the message names the bad field. */
export class ConfigError extends Error {
  readonly code = 'bad-config'
  readonly field: string

  constructor (field: string, message: string, options?: { cause?: unknown }) {
    super(`${field}: ${message}`, options)
    this.name = 'ConfigError'
    this.field = field
  }
}

/** A command line that cannot be run as given: the message says what to change. fedvm's dispatcher knows it by its code. */
export class UsageError extends Error {
  readonly code = 'usage'

  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UsageError'
  }
}
