/** A rule's `when` text that cannot be read: the message says what was expected (config names the field). */
export class RuleExpressionError extends Error {
  readonly code = 'bad-rule-expression'

  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RuleExpressionError'
  }
}
