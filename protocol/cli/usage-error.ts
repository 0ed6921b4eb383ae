/** The `code` by which the `fedvm` dispatcher tells a usage error from a failure, whichever layer threw it. */
export const USAGE_ERROR_CODE = 'ERR_USAGE'

/** A command line that cannot be run as given: the message says what to change (exit code EXIT.USAGE). */
export class UsageError extends Error {
  readonly code = USAGE_ERROR_CODE

  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}
