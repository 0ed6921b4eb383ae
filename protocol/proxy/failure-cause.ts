/**
 * What a failed transfer's log line says about why: the error and its causes, outermost first, each
 * as its code (a ProtocolError code or a system code such as ECONNRESET) and message. Messages here
 * never hold a token: the proxies put tokens in headers only, and no error quotes a header.
 */
export interface FailureCause {
  code?: string
  message: string
}

export function failureCauses (err: unknown, depth = 4): FailureCause[] {
  const out: FailureCause[] = []
  let current: unknown = err
  while (current !== undefined && current !== null && out.length < depth) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code
      out.push({ ...(typeof code === 'string' ? { code } : {}), message: current.message.slice(0, 300) })
      current = current.cause
    } else {
      out.push({ message: String(current).slice(0, 300) })
      current = undefined
    }
  }
  return out
}
