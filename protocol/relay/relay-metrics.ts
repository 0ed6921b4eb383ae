import { Gauge, type Registry } from 'prom-client'
import type { MonitoringRelay } from './monitoring-relay'

export const DEAD_LETTER_GAUGE = 'fedvm_relay_dead_letter_length'

/**
 * The relay's families on the site's /metrics: `fedvm_relay_dead_letter_length{next_hop}`, the
 * deliveries each next hop refused for good and this site keeps apart (the operator's alert: they
 * are never sent again by themselves). Read at scrape time from the relay's counts, which follow
 * rows set apart here at once and another process's requeue within its data_version poll.
 */
export function registerRelayMetrics (registry: Registry, relay: Pick<MonitoringRelay, 'deadDeliveries'>): void {
  new Gauge({
    name: DEAD_LETTER_GAUGE,
    help: 'Relayed deliveries the next hop refused for good, kept apart as dead rows of the relay outbox and never sent again by themselves: list them with `fedvm site dead-letters`, fix the cause, then move them back with `fedvm site dead-letters --requeue`.',
    labelNames: ['next_hop'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [hop, n] of Object.entries(relay.deadDeliveries())) this.set({ next_hop: hop }, n)
    },
  })
}
