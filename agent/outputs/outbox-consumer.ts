import type { ConsumerConfig } from '../config/agent-config'
import type { AgentStore } from '../state/agent-store'
import { HttpConsumer } from './http-consumer'
import { NatsConsumer } from './nats-consumer'

/**
 * One consumer of the durable outbox: it sends the deliveries queued under its `name` and removes
 * each only once the receiver acknowledged it (2xx for HTTP, a JetStream PubAck for NATS).
 * `kick()` says new deliveries were queued; retries and backoff are the consumer's own.
 */
export interface OutboxConsumer {
  readonly name: string
  readonly stats: { sent: number, failedAttempts: number }
  start (): void
  kick (): void
  stop (): void
}

/** The outbox key of a consumer: its `name`, else the URL (http) or `nats:SITE` (nats). */
export function consumerName (config: ConsumerConfig): string {
  return config.name ?? (config.type === 'http' ? config.url : `nats:${config.site}`)
}

export function createConsumer (config: ConsumerConfig, store: AgentStore, log: (line: string) => void): OutboxConsumer {
  const name = consumerName(config)
  if (config.type === 'nats') return new NatsConsumer(name, config, store, log)
  return new HttpConsumer(name, config.url, store, log)
}
