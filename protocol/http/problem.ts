import { PROBLEMS, ProtocolError, isProblemCode, type RefusedItem } from '../errors'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

/** An RFC 9457 problem document with fedvm's extension members `code` and `retryable`. */
export interface ProblemDocument {
  type: string
  title: string
  status: number
  detail: string
  code: string
  retryable: boolean
  downstreamCode?: string
  /** A list request's items refused on their own (e.g. `deliveries[3]`); the others were fine. */
  refused?: RefusedItem[]
}

export function toProblemDocument (err: ProtocolError): ProblemDocument {
  const doc: ProblemDocument = {
    type: `urn:fedvm:problem:${err.code}`,
    title: PROBLEMS[err.code].title,
    status: err.status,
    detail: err.message,
    code: err.code,
    retryable: err.retryable,
  }
  if (err.downstreamCode !== undefined) doc.downstreamCode = err.downstreamCode
  if (err.refused !== undefined) doc.refused = [...err.refused]
  return doc
}

/** A problem document a partner sent back, as an error on this side (its detail kept as the message). */
export function fromProblemDocument (value: unknown, status: number): ProtocolError {
  const doc = (typeof value === 'object' && value !== null ? value : {}) as Partial<ProblemDocument>
  const code = isProblemCode(doc.code) ? doc.code : 'bad-response'
  return new ProtocolError(code, typeof doc.detail === 'string' ? doc.detail : `HTTP ${status}`, {
    retryable: typeof doc.retryable === 'boolean' ? doc.retryable : status >= 500,
    downstreamCode: doc.downstreamCode,
    refused: refusedItems(doc.refused),
  })
}

/** The items of a partner's `refused` list that are well formed (a place, a known code); undefined when it sent none. */
function refusedItems (value: unknown): RefusedItem[] | undefined {
  if (!Array.isArray(value)) return undefined
  const items: RefusedItem[] = []
  for (const v of value as unknown[]) {
    if (typeof v !== 'object' || v === null) continue
    const item = v as Partial<Record<keyof RefusedItem, unknown>>
    if (typeof item.index !== 'number' || !Number.isInteger(item.index) || item.index < 0 || !isProblemCode(item.code)) continue
    items.push({
      index: item.index,
      ...(typeof item.id === 'string' ? { id: item.id } : {}),
      code: item.code,
      retryable: item.retryable === true,
      detail: typeof item.detail === 'string' ? item.detail : '',
    })
  }
  return items
}

/**
 * What a site passes on when a partner further along failed: the partner's code and retryability,
 * never its detail (it may name that site's hosts).
 */
export function wrapDownstream (err: ProtocolError, op: string): ProtocolError {
  if (err.code === 'downstream-failed' || err.code === 'partner-unreachable') {
    return new ProtocolError(err.code, `${op} failed further along the chain`, { retryable: err.retryable, downstreamCode: err.downstreamCode, cause: err })
  }
  return new ProtocolError('downstream-failed', `${op} failed further along the chain (${err.code})`, { retryable: err.retryable, downstreamCode: err.code, cause: err })
}
