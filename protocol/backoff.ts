export interface BackoffOptions {
  /** The wait before the first retry (ms). */
  minMs: number
  /** The longest wait (ms). */
  maxMs: number
  /**
   * Spreads each wait over [50 %, 100 %] of its value: senders that failed together do not retry
   * together. Off where one receiver decides alone (a NATS redelivery, the Controller's next attempt).
   */
  jitter: boolean
}

/**
 * The wait before retry number `failures` (0: the first retry): doubling from minMs, capped at
 * maxMs. Every retry loop of fedvm (outboxes, relay hops, the bus, the Controller) waits this way.
 */
export function backoffMs (failures: number, options: BackoffOptions, random: () => number = Math.random): number {
  // 2 ** 16 already exceeds every cap; a larger exponent would only overflow towards Infinity.
  const wait = Math.min(options.maxMs, options.minMs * 2 ** Math.min(Math.max(0, failures), 16))
  return options.jitter ? wait * (0.5 + random() / 2) : wait
}
