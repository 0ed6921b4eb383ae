import type { Delivery } from '../relay/delivery'

/**
 * The newest stored delivery of each (vm, metric, function): what /metrics shows. Seeded from the
 * store at start (primary-queries' latestDeliveries) and kept current from relay.onStored, so a
 * scrape never scans the table.
 */
export class PrimaryLatest {
  private readonly byKey = new Map<string, Delivery>()

  /** Keeps a delivery if it is newer (data time `to`) than the one held for its key. */
  readonly update = (deliveries: readonly Delivery[]): void => {
    for (const d of deliveries) {
      const key = JSON.stringify([d.vm, d.metric, d.function ?? (d.format === 'raw' ? 'raw' : '')])
      const held = this.byKey.get(key)
      if (held === undefined || d.to >= held.to) this.byKey.set(key, d)
    }
  }

  values (): IterableIterator<Delivery> {
    return this.byKey.values()
  }
}
