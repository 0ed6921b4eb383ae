/** A command line that cannot be run as given: the message says what to change (exit code 2). */
export class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}
