/**
 * Polls `probe` until it returns something other than undefined/false, or throws naming what it
 * waited for. The last probe error (if any) is kept as the cause, and `context` (e.g. a daemon's
 * log tail) is appended to the message, so a timeout says why.
 */
export async function waitFor<T> (what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, intervalMs = 25, context?: () => string | Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const more = context === undefined ? '' : `\n${await context()}`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${more}`, { cause: lastError })
    }
    await sleep(intervalMs)
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
