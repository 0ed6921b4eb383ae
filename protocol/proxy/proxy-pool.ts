/**
 * This site's transfer proxies as the control channel hands them out: they take turns (the paper's
 * "choose t ∈ T"); a token names its proxy by index.
 */
export class ProxyPool {
  private next = 0

  constructor (readonly urls: readonly string[]) {
    if (urls.length === 0) throw new Error('ProxyPool: at least one transfer proxy is needed')
  }

  choose (): number {
    const index = this.next
    this.next = (this.next + 1) % this.urls.length
    return index
  }

  url (index: number): string {
    return this.urls[index]
  }
}
