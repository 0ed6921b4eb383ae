/** A shared byte budget per second (a proxy's optional bandwidth cap): callers wait for their share. */
export class Throttle {
  private nextFree = Date.now()

  constructor (private readonly bytesPerSecond: number) {}

  async take (bytes: number): Promise<void> {
    const now = Date.now()
    const start = Math.max(now, this.nextFree)
    this.nextFree = start + (bytes * 1000) / this.bytesPerSecond
    const wait = this.nextFree - now
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
  }
}
