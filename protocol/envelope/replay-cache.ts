/** Remembers message ids for as long as their timestamps could still be accepted. */
export interface ReplayCache {
  /** True when (from, id) was already seen; otherwise remembers it until `keepUntil` (ms). */
  seenBefore: (from: string, id: string, keepUntil: number) => boolean
}

/** For unit tests and tools; the site daemon uses the SQLite one so a restart does not reopen the window. */
export class MemoryReplayCache implements ReplayCache {
  private readonly entries = new Map<string, number>()

  seenBefore (from: string, id: string, keepUntil: number): boolean {
    const now = Date.now()
    for (const [key, until] of this.entries) if (until < now) this.entries.delete(key)
    const key = `${from}\u0000${id}`
    if (this.entries.has(key)) return true
    this.entries.set(key, keepUntil)
    return false
  }
}
