/** Agent errors with a stable code, for the CLI's exit status and the logs. */
export type AgentErrorCode = 'CONFIG_INVALID' | 'DESCRIPTOR_INVALID' | 'DEAD_LETTER_NOT_FOUND'

export class AgentError extends Error {
  constructor (readonly code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AgentError'
  }
}
