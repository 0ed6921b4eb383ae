/**
 * Every exit status of the fedvm command, and the one place errors become one. Commands never return
 * a number: they resolve (OK) or throw, and the dispatcher maps the error's `code` through this table.
 * packaging/systemd's units name USAGE and CONFIG in RestartPreventExitStatus (restarting cannot fix them).
 */
export const EXIT = {
  OK: 0,
  /** The command ran and failed (a refused migration, an unreachable daemon, an I/O error). */
  FAILURE: 1,
  /** The command line cannot be run as given. */
  USAGE: 2,
  /** The config file (or a file it names) is missing, unreadable or invalid. */
  CONFIG: 3,
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]

/** The error codes the layers give their errors, as the exit status each one means. */
const EXIT_BY_ERROR_CODE: Readonly<Record<string, ExitCode>> = {
  usage: EXIT.USAGE,
  'bad-config': EXIT.CONFIG,
  CONFIG_INVALID: EXIT.CONFIG,
  DESCRIPTOR_INVALID: EXIT.CONFIG,
}

/** The exit status for anything a command threw; unknown errors are FAILURE. */
export function exitCodeOf (err: unknown): ExitCode {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return EXIT.FAILURE
  // node:util parseArgs refuses unknown options, missing values and stray positionals with these codes.
  if (code.startsWith('ERR_PARSE_ARGS_')) return EXIT.USAGE
  return Object.prototype.hasOwnProperty.call(EXIT_BY_ERROR_CODE, code) ? EXIT_BY_ERROR_CODE[code] : EXIT.FAILURE
}
