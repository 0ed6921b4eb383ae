/** Every exit code the fedvm command uses. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
} as const
