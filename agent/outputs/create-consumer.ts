import type { ConsumerConfig } from '../config/agent-config'
import type { AgentStore } from '../state/agent-store'
import { HttpConsumer } from './http-consumer'
import { NatsConsumer } from './nats-consumer'
import type { OutboxConsumer } from './outbox-consumer'

/** The outbox key of a consumer: its `name`, else the URL (http) or `nats:SITE` (nats). */
export function consumerName (config: ConsumerConfig): string {
  return config.name ?? (config.type === 'http' ? config.url : `nats:${config.site}`)
}

export function createConsumer (config: ConsumerConfig, store: AgentStore, log: (line: string) => void): OutboxConsumer {
  const name = consumerName(config)
  if (config.type === 'nats') return new NatsConsumer(name, config, store, log)
  return new HttpConsumer(name, config.url, store, log)
}
