import { z } from 'zod'

/**
 * `monitoring.remoteWrite`: the primary site sends its store's KPI history to a Prometheus
 * remote-write receiver (`--web.enable-remote-write-receiver`; give it a
 * `storage.tsdb.out_of_order_time_window`, as deliveries arrive out of time order). Sealed values go
 * too only with `monitoring.metricsSealed`.
 */
export const RemoteWriteSchema = z.object({
  /** The receiver, e.g. http://127.0.0.1:9090/api/v1/write. */
  url: z.string().refine((text) => {
    try {
      return ['http:', 'https:'].includes(new URL(text).protocol)
    } catch {
      return false
    }
  }, 'must be an http:// or https:// URL'),
  /** Deliveries per request. */
  batchSize: z.number().int().min(1).max(10_000).default(500),
  /** How long one request may take before it is retried. */
  timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
}).strict()

export type RemoteWriteConfig = z.infer<typeof RemoteWriteSchema>
