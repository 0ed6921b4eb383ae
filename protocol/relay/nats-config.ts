import { z } from 'zod'
import { DEFAULT_SUBJECT_PREFIX, isSubjectPrefix } from './nats-subjects'

/** JetStream stream and consumer names: no whitespace, '.', '*', '>', '/' or '\'. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/
const SERVER = /^((nats|tls):\/\/)?[^\s/]+$/

/**
 * `monitoring.nats`: the NATS servers this site's hosts publish deliveries to, and the
 * JetStream stream and durable consumer the site takes them from. The stream holds what the hosts
 * published until the site daemon took it, so hosts go on while the daemon restarts or falls behind.
 */
export const NatsIngestSchema = z.object({
  servers: z.array(z.string().regex(SERVER, 'must be nats://HOST:PORT, tls://HOST:PORT or HOST:PORT')).min(1, 'name at least one NATS server'),
  /** Defaults to FEDVM_DELIVERIES_<site id with "." as "_">. */
  stream: z.string().regex(NAME, 'must be 1-64 letters, digits, _ or -').optional(),
  durable: z.string().regex(NAME, 'must be 1-64 letters, digits, _ or -').default('fedvm-site'),
  subjectPrefix: z.string().refine(isSubjectPrefix, 'must be dot-separated tokens of letters, digits, _ and -').default(DEFAULT_SUBJECT_PREFIX),
  /** JetStream drops a repeated Nats-Msg-Id (the delivery id) within this window; the relay's id keys catch later ones. */
  duplicateWindowMs: z.number().int().min(1000).max(7 * 24 * 3600_000).default(10 * 60_000),
  /** Deliveries handed out and not yet acknowledged, at most (flow control when the site falls behind). */
  maxAckPending: z.number().int().min(1).max(1_000_000).default(20_000),
  /**
   * Copies of the stream (and its consumer) kept by a JetStream cluster: 1 for a single server;
   * 3 on a three-node cluster, so the stream goes on while any one node is down. JetStream allows at most 5.
   */
  replicas: z.number().int().min(1).max(5).default(1),
  /** At most this many deliveries per relay.accept() batch. */
  batch: z.number().int().min(1).max(10_000).default(1000),
  /** The site's own NATS user: a file holding its nkey seed (SU…), when the servers require authentication. */
  nkeySeedFile: z.string().min(1).optional(),
}).strict()

export type NatsIngestConfig = z.infer<typeof NatsIngestSchema>

export function defaultStreamName (siteId: string): string {
  return `FEDVM_DELIVERIES_${siteId.replace(/\./g, '_')}`
}
