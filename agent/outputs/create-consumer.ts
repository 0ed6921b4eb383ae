import type { ConsumerConfig } from '../config/agent-config'
import type { AgentStore } from '../state/agent-store'
import { HttpConsumer, type RetryBounds } from './http-consumer'
import { NatsConsumer } from './nats-consumer'
import { consumerName, type OutboxConsumer } from './outbox-consumer'

/** The consumer a config entry names: http POSTs, or NATS JetStream publishes. */
/** `bounds`: how long an http consumer retries a delivery the site refuses for where its VM is or for this host's signature (agent config's deadLetters). */
export function createConsumer (config: ConsumerConfig, store: AgentStore, log: (line: string) => void, bounds?: RetryBounds): OutboxConsumer {
  const name = consumerName(config)
  if (config.type === 'nats') return new NatsConsumer(name, config, store, log)
  return new HttpConsumer(name, config.url, store, log, config.host === undefined ? undefined : { host: config.host, keyFile: config.hostKey! }, bounds)
}
