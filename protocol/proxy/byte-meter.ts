/** How many whole seconds a meter keeps: the window a recent rate may ask for, and the current second. */
const SLOTS = 8

/**
 * Counts bytes as they pass, in all and per wall-clock second (the last few seconds kept), so a
 * reader can take a recent rate whenever it asks, with no timer. The clock is passed in: the caller's
 * `Date.now()`, or a test's.
 */
export class ByteMeter {
  total = 0
  /** When the first byte passed (ms since the epoch). */
  firstAt: number | undefined
  private readonly bytes: number[] = new Array<number>(SLOTS).fill(0)
  /** The second (ms since the epoch / 1000, floored) each slot counts. */
  private readonly seconds: number[] = new Array<number>(SLOTS).fill(-1)

  add (bytes: number, now: number): void {
    if (bytes <= 0) return
    this.firstAt ??= now
    this.total += bytes
    const second = Math.floor(now / 1000)
    const slot = second % SLOTS
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second
      this.bytes[slot] = 0
    }
    this.bytes[slot] += bytes
  }

  /** The bytes of the `count` whole seconds before the one `now` falls in (at most SLOTS - 1). */
  lastSeconds (now: number, count: number): number {
    if (count < 1 || count >= SLOTS) throw new RangeError(`count must be 1 to ${SLOTS - 1}, not ${count}`)
    const current = Math.floor(now / 1000)
    let sum = 0
    for (let second = current - count; second < current; second++) {
      const slot = second % SLOTS
      if (this.seconds[slot] === second) sum += this.bytes[slot]
    }
    return sum
  }
}
