/** Remembers message ids for as long as their timestamps could still be accepted. */
export interface ReplayCache {
  /** True when (from, id) was already seen; otherwise remembers it until `keepUntil` (ms). */
  seenBefore: (from: string, id: string, keepUntil: number) => boolean
}

/** For unit tests and tools; the site daemon uses the SQLite one so a restart does not reopen the window. */
export class MemoryReplayCache implements ReplayCache {
  private readonly entries = new Map<string, number>()
  private purgedAt = 0

  seenBefore (from: string, id: string, keepUntil: number): boolean {
    const now = Date.now()
    // Expired entries go at most once a second: the host ingest asks this for every batch of every host.
    if (now - this.purgedAt >= 1000) {
      for (const [key, until] of this.entries) if (until < now) this.entries.delete(key)
      this.purgedAt = now
    }
    const key = `${from}\u0000${id}`
    const until = this.entries.get(key)
    if (until !== undefined && until >= now) return true
    this.entries.set(key, keepUntil)
    return false
  }
}
