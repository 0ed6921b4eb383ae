/**
 * One settlement at a time per transfer token: the Controller's push and the site's own resolution
 * may reach the same token at once, and a host's confirm or release must not run twice in parallel.
 */
export class TokenLocks {
  private readonly tails = new Map<string, Promise<unknown>>()

  async run<T> (token: string, action: () => Promise<T>): Promise<T> {
    const before = this.tails.get(token) ?? Promise.resolve()
    const result = before.then(action, action)
    const tail = result.catch(() => {})
    this.tails.set(token, tail)
    try {
      return await result
    } finally {
      if (this.tails.get(token) === tail) this.tails.delete(token)
    }
  }
}
