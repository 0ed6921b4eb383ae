import type { Caller } from './caller'

export interface SendOptions {
  /** The token or route the receiver knows this request by (the signed hop's `ref`). */
  ref?: string
  timeoutMs?: number
  /** A frequent, cheap read (the Controller's progress polling): not logged request by request. */
  quiet?: boolean
}

/** The partner sites of this site, and the one way the roles reach them: a signed request. */
export interface PartnerClient {
  /** The partners' site ids, in config order. */
  ids: () => string[]
  /**
   * Sends `op` to a partner: forwarded (same body, one more signed hop) when acting for a verified
   * caller of the same operation, otherwise as a new request with this site as origin. Resolves with
   * the partner's signed answer, unchecked; a problem document it sent back is thrown.
   */
  send: (to: string, op: string, body: unknown, caller: Caller | undefined, options?: SendOptions) => Promise<unknown>
}
