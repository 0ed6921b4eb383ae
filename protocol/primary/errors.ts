/**
 * Errors of the primary site's monitoring views (query, /metrics, rules), each with a stable `code`.
 * Messages name files and delivery ids, never a sealed value or key material.
 */
export class MonitoringViewError extends Error {
  constructor (readonly code: 'seal-key-missing' | 'seal-key-invalid' | 'sealed-unreadable' | 'store-missing' | 'bad-time', message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MonitoringViewError'
  }
}
