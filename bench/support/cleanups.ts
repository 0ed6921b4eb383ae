/**
 * What a benchmark started, stopped in reverse order once, whether it ends, fails or is signalled:
 * a signal's cleanup and the failing run's `finally` wait for the same steps, and a step added
 * while cleaning (a host that finished starting meanwhile) still runs before either exits.
 */
export class Cleanups {
  private readonly steps: Array<() => Promise<unknown>> = []
  private running: Promise<void> | undefined

  add (step: () => Promise<unknown>): void {
    this.steps.push(step)
    if (this.running !== undefined) this.running = this.running.then(async () => await this.drain())
  }

  /** Throws once cleaning has begun, so the run starts nothing more. */
  check (): void {
    if (this.running !== undefined) throw new Error('stopped: cleaning up')
  }

  async run (): Promise<void> {
    for (;;) {
      const running = this.running ??= this.drain()
      await running
      if (running === this.running && this.steps.length === 0) return
    }
  }

  private async drain (): Promise<void> {
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      await step().catch((err) => console.error(`cleanup: ${(err as Error).message}`))
    }
  }
}
