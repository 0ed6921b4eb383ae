/** A clock and a one-shot timer: what decides when held work runs (tests inject both). */
export interface Timing {
  now (): number
  after (ms: number, fn: () => void): void
}

/** performance.now() and setTimeout; `unref`: the timer does not hold the process open. */
export function realTiming ({ unref = false }: { unref?: boolean } = {}): Timing {
  return {
    now: () => performance.now(),
    after: (ms, fn) => {
      const timer = setTimeout(fn, ms)
      if (unref) timer.unref()
    },
  }
}
