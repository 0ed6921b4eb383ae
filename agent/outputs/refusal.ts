import type { DeadLetterReason } from '../state/dead-letters'

/** What to do with a batch a receiver did not acknowledge. */
export type Verdict =
  /** Keep the whole batch and send it again after a backoff. */
  | { kind: 'retry', reason: string }
  /**
   * The receiver named the deliveries at these places of the batch, each with its reason: those it
   * refused for good are set aside, those it refused for now (`later`) sent again after a backoff;
   * the others were fine and go again at once.
   */
  | { kind: 'refused-items', items: ReadonlyArray<{ index: number, reason: DeadLetterReason, later: boolean }> }
  /** The batch as a whole is refused for good, without saying which delivery: one delivery alone is refused; a larger batch is split to find out. */
  | { kind: 'refused-batch', reason: DeadLetterReason }
  /**
   * 401: the site refuses this host's signature (it does not know the host or its key yet, or the
   * clocks disagree), whatever the batch holds. Retried, until a delivery was queued longer ago
   * than the consumer's unauthenticatedAfterMs: then it is set aside with this reason.
   */
  | { kind: 'unauthenticated', reason: DeadLetterReason }

/** An answer other than 2xx: its status and, when it sent one, its problem document (RFC 9457, with fedvm's `code`, `retryable`, `refused`). */
export interface Refusal {
  status: number
  problem?: unknown
}

/**
 * Statuses that say when or who, not what: sending the same batch again can succeed. 408 and 429
 * (the receiver's time or rate), 403 and 404 (the site's records do not place the VM on this host yet: they follow a
 * migration a moment after the VM's files arrive), 409 (a signature's nonce seen before; the next
 * POST has a new one).
 */
const RETRIED_4XX = new Set([403, 404, 408, 409, 429])
/**
 * A delivery refused with these codes is refused for where its VM is (RETRIED_4XX's 403 and 404):
 * for now, until it has waited longer than a site remembers a VM that left (the consumer's
 * unplacedAfterMs).
 */
export const UNPLACED_CODES: ReadonlySet<string> = new Set(['not-permitted', 'unknown-vm'])

/**
 * Judges a refusal (a pure function, so each case is tested on its own). A 401 is about this
 * host's signature, never the batch (`unauthenticated`). A 4xx whose problem
 * document lists deliveries under `refused` is judged per delivery: for now when the receiver marks
 * it `retryable` or refuses it for where its VM is (UNPLACED_CODES), else for good; the rest were
 * fine. Otherwise 5xx and the 4xx of RETRIED_4XX are retried, and so is any answer whose problem
 * document says `retryable: true`; any other 4xx refuses the batch as a whole, for good. Other
 * statuses (1xx, 3xx) are retried: they say nothing about the batch.
 */
export function judgeRefusal (refusal: Refusal, batchSize: number): Verdict {
  const { status } = refusal
  const problem = asProblem(refusal.problem)
  const reason: DeadLetterReason = { status, code: problem?.code ?? `http-${status}`, detail: problem?.detail ?? `HTTP ${status}` }
  const said = problem?.code === undefined ? `HTTP ${status}` : `HTTP ${status} ${problem.code}`
  const listed = status >= 400 && status < 500 && problem?.retryable !== true
    ? (problem?.refused ?? []).filter((item) => Number.isInteger(item.index) && item.index >= 0 && item.index < batchSize)
    : []
  if (status === 401) return { kind: 'unauthenticated', reason }
  if (listed.length > 0) {
    const items = new Map<number, { index: number, reason: DeadLetterReason, later: boolean }>()
    for (const item of listed) {
      const code = item.code ?? reason.code
      items.set(item.index, { index: item.index, reason: { status, code, detail: item.detail ?? reason.detail }, later: item.retryable === true || UNPLACED_CODES.has(code) })
    }
    return { kind: 'refused-items', items: [...items.values()] }
  }
  if (status < 400 || status >= 500 || RETRIED_4XX.has(status) || problem?.retryable === true) {
    return { kind: 'retry', reason: problem?.detail === undefined ? said : `${said}: ${problem.detail}` }
  }
  return { kind: 'refused-batch', reason }
}

interface ProblemView {
  code?: string
  detail?: string
  retryable?: boolean
  refused?: Array<{ index: number, code?: string, detail?: string, retryable?: boolean }>
}

/** The members of a problem document this judge reads, each only when it has the right type. */
function asProblem (value: unknown): ProblemView | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const doc = value as Record<string, unknown>
  // The receiver's words go into the agent's log: one line each, of a bounded length.
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 1000).replace(/[\u0000-\u001f\u007f]/g, ' ') : undefined)
  const refused = Array.isArray(doc.refused)
    ? doc.refused.filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null && typeof (r as { index?: unknown }).index === 'number')
      .map((r) => ({ index: r.index as number, code: text(r.code), detail: text(r.detail), retryable: typeof r.retryable === 'boolean' ? r.retryable : undefined }))
    : undefined
  return { code: text(doc.code), detail: text(doc.detail), retryable: typeof doc.retryable === 'boolean' ? doc.retryable : undefined, refused }
}
