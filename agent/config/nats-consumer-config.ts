import { z } from 'zod'
import { DEFAULT_SUBJECT_PREFIX, isSubjectPrefix } from '../../protocol/relay/nats-subjects'
import { SITE_ID } from '../../protocol/site-id'

const SERVER = /^((nats|tls):\/\/)?[^\s/]+$/

/**
 * `{ "type": "nats", "servers": ["nats://127.0.0.1:4222"], "site": "site-c" }`: deliveries are
 * published to `<subjectPrefix>.<site>.<vm>` on these servers (any of them; the client fails over
 * and reconnects), where the site's JetStream stream stores them until the site took them.
 */
export const NatsConsumerSchema = z.object({
  type: z.literal('nats'),
  servers: z.array(z.string().regex(SERVER, 'must be nats://HOST:PORT, tls://HOST:PORT or HOST:PORT')).min(1, 'name at least one NATS server'),
  site: z.string().regex(SITE_ID, 'must be the id of the site that runs this host\'s VMs'),
  subjectPrefix: z.string().refine(isSubjectPrefix, 'must be dot-separated tokens of letters, digits, _ and -').default(DEFAULT_SUBJECT_PREFIX),
  name: z.string().min(1).optional(),
  /** This host's id in the site config: deliveries go to `<subjectPrefix>.<site>.<host>.<vm>`, the subjects its NATS user may publish to. */
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be this host\'s id in the site config').optional(),
  /** A file holding this host's NATS nkey seed (SU…, `fedvm host-key` writes host.nk). */
  nkeySeedFile: z.string().min(1).optional(),
}).strict()
