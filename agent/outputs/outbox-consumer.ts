import type { ConsumerConfig } from '../config/agent-config'

/**
 * One consumer of the durable outbox: it sends the deliveries queued under its `name` and removes
 * each only once the receiver acknowledged it (2xx for HTTP, a JetStream PubAck for NATS).
 * `kick()` says new deliveries were queued; retries and backoff are the consumer's own.
 */
export interface OutboxConsumer {
  readonly name: string
  readonly stats: { sent: number, failedAttempts: number, deadLettered: ReadonlyMap<string, number>, deadLettersDropped: number }
  /** POSTs the site answered 401 (it refuses this host's signature), for consumers that sign. */
  readonly signature?: { readonly counts: ReadonlyMap<string, number>, readonly refusedNow: boolean }
  start (): void
  kick (): void
  stop (): void
}

/** The outbox key of a consumer: its `name`, else the URL (http) or `nats:SITE` (nats). */
export function consumerName (config: ConsumerConfig): string {
  return config.name ?? (config.type === 'http' ? config.url : `nats:${config.site}`)
}
