import { AckPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import type { NatsIngestConfig } from './nats-config'
import { siteSubjects } from './nats-subjects'

/** A delivery handed out and not acknowledged within this is offered again (the relay drops the repeat by id). */
const ACK_WAIT_MS = 30_000

/**
 * Sets up a site's delivery stream and its durable consumer, or brings existing ones up to date:
 * file storage, work-queue retention (a message is removed once the site acknowledged it), the
 * site's subjects, the duplicate window for Nats-Msg-Id, `replicas` copies on a cluster; the consumer
 * (replicated as its stream is) pulls with explicit acks.
 */
export async function ensureDeliveryStream (jsm: JetStreamManager, stream: string, siteId: string, config: NatsIngestConfig): Promise<void> {
  const subjects = [siteSubjects(config.subjectPrefix, siteId)]
  const duplicateWindow = nanos(config.duplicateWindowMs)
  const existing = await jsm.streams.info(stream).catch(notFound)
  if (existing === undefined) {
    await jsm.streams.add({ name: stream, subjects, retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: duplicateWindow, num_replicas: config.replicas })
  } else if (existing.config.subjects?.join() !== subjects.join() || existing.config.duplicate_window !== duplicateWindow || existing.config.num_replicas !== config.replicas) {
    // A cluster scales an existing stream's replicas up or down in place.
    await jsm.streams.update(stream, { subjects, duplicate_window: duplicateWindow, num_replicas: config.replicas })
  }
  const settings = { ack_wait: nanos(ACK_WAIT_MS), max_ack_pending: config.maxAckPending }
  if (await jsm.consumers.info(stream, config.durable).catch(notFound) === undefined) {
    await jsm.consumers.add(stream, { durable_name: config.durable, ack_policy: AckPolicy.Explicit, ...settings })
  } else {
    await jsm.consumers.update(stream, config.durable, settings)
  }
}

/** undefined for "no such stream/consumer", any other error thrown on. */
function notFound (err: unknown): undefined {
  if (err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound)) return undefined
  throw err
}
