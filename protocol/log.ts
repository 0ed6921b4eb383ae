/** A site's structured log: one JSON object per event (the daemon writes them to stderr, tests collect them). */
export type Log = (event: Record<string, unknown>) => void
