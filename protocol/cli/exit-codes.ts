/** The exit codes of every fedvm command; commands return these, never a bare number. */
export const EXIT = {
  OK: 0,
  /** The command ran and failed (a refused request, an I/O error): the message says why. */
  FAILURE: 1,
  /** The command line cannot be run as given (a UsageError): nothing was done. */
  USAGE: 2,
  /** The config file cannot be read or is invalid: nothing was done. */
  CONFIG: 3,
} as const
