import { z } from 'zod'
import { ConfigError } from '../errors'
import { RemoteWriteSchema } from '../primary/remote-write/remote-write-config'
import { RulesSchema } from '../primary/rules/rules-config'
import { NatsIngestSchema } from '../relay/nats-config'
import { listenSchema } from '../http/listen-address'
import { issueField, issueMessage } from '../zod-issues'


/**
 * The site config's optional `monitoring` section. Every sub-key is optional; each part
 * of the monitoring relay adds its own sub-key here, one line, with its parser in its own file.
 */
export const MonitoringSchema = z.object({
  /** Where this site's hosts' agents POST deliveries, each batch signed with its host's key (relay/host-signature.ts). */
  ingest: listenSchema.optional(),
  /**
   * "host-key" (default): a batch must carry the signature of a host in `hosts[]` with a `publicKey`,
   * and may hold deliveries only for VMs on that host. "none" takes any batch for any VM of the site
   * (the ingest then trusts everything that can reach it; for tests and isolated set-ups only).
   */
  ingestAuth: z.enum(['host-key', 'none']).default('host-key'),
  /** Data times further ahead of this site's clock are refused at every hop, and rules never fire on them. */
  maxClockSkewMs: z.number().int().min(0).max(24 * 3600_000).default(60_000),
  /** How long new deliveries wait to share one signed request to the next hop. */
  forwardLingerMs: z.number().int().min(0).max(10_000).default(5),
  /** How long a departed VM's former route is kept, so deliveries still queued for it flow on. */
  tombstoneMs: z.number().int().min(1000).default(24 * 3600_000),
  /** The primary site's own /metrics, newest value per VM metric (primary-metrics.ts). */
  metricsListen: listenSchema.optional(),
  /** A web config file (exporter-toolkit's web.config.yml form: TLS, basic auth) for that /metrics; relative to the site config's folder. */
  metricsWebConfig: z.string().min(1).optional(),
  /** Whether that /metrics shows opened sealed values (off: scrapers are usually less trusted than the site). */
  metricsSealed: z.boolean().default(false),
  /**
   * An Intermediary that observes (paper III-D: monitoring data reaches every site involved with a VM)
   * also stores what it passes on for the VMs it delegated, answers `fedvm monitor query` and runs its rules on it.
   */
  observe: z.boolean().default(false),
  /** KPI history to a Prometheus remote-write receiver, each value at its data time (remote-write-config.ts). */
  remoteWrite: RemoteWriteSchema.optional(),
  /** SLA-style rules on newly stored primary deliveries (rules/rules-config.ts). */
  rules: RulesSchema.default([]),
  /** Deliveries from the NATS bus (nats-config.ts): servers, JetStream stream and durable consumer. */
  nats: NatsIngestSchema.optional(),
}).strict()

export type MonitoringConfig = z.infer<typeof MonitoringSchema>

export const DEFAULT_MONITORING: MonitoringConfig = MonitoringSchema.parse({})

/** Validates `monitoring`; a bad value is a ConfigError naming the field (`monitoring.ingest`). */
export function parseMonitoringConfig (value: unknown): MonitoringConfig {
  const result = MonitoringSchema.safeParse(value ?? {})
  if (result.success) return result.data
  const issue = result.error.issues[0]
  throw new ConfigError(issueField(issue, 'monitoring'), issueMessage(issue))
}
