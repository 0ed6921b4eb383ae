/** Why a collector produced nothing in one scrape; logged by the core, never thrown to the scraper. */
export type CollectErrorCode =
  | 'COLLECTOR_DEADLINE'   // collect() did not settle within the deadline
  | 'COLLECTOR_BUSY'       // the previous collect() of this collector has not settled yet
  | 'COLLECTOR_FAILED'     // collect() rejected

export class CollectError extends Error {
  readonly code: CollectErrorCode
  readonly collector: string

  constructor (code: CollectErrorCode, collector: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CollectError'
    this.code = code
    this.collector = collector
  }
}
