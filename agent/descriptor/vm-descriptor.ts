import { z } from 'zod'
import { isDataPointName } from '../../host/data-points'
import { AgentError } from '../errors'
import { describeIssues } from '../../protocol/zod-issues'
import { PROCESSING_FUNCTIONS } from '../processing/functions'
import { PREDICATE_OPS } from '../processing/predicate'
import { parseKpiMetric, type KpiTarget } from './kpi-metric'

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/

/** A KPI (`kpi:TABLE.COLUMN`, `kpi:TABLE`: its grammar is agent/descriptor/kpi-metric.ts) or a hypervisor data point. */
const METRIC = /^(kpi:.+|[a-z][a-z0-9_]*(\.[a-z0-9_]+)+)$/
/** Node's timers take at most 2^31-1 ms; a longer interval would fire after 1 ms, again and again. */
const MAX_INTERVAL_MS = 2 ** 31 - 1
const interval = z.number().int().min(0).max(MAX_INTERVAL_MS, `must be at most ${MAX_INTERVAL_MS} ms (about 24.8 days)`)

export const SpecifierSchema = z.object({
  metric: z.string().regex(METRIC, 'must be kpi:TABLE.COLUMN, kpi:TABLE, or a hypervisor data point such as cpu.time'),
  monitoringIntervalMs: interval,
  deliveryIntervalMs: interval,
  format: z.enum(['raw', 'processed']),
  function: z.enum(PROCESSING_FUNCTIONS).optional(),
  when: z.object({ op: z.enum(PREDICATE_OPS), value: z.number() }).strict().optional(),
  encrypt: z.boolean().default(false),
}).strict().superRefine((spec, ctx) => {
  const kpi = spec.metric.startsWith('kpi:') ? parseKpiMetric(spec.metric) : undefined
  if (kpi === undefined && !isDataPointName(spec.metric)) {
    ctx.addIssue({ code: 'custom', path: ['metric'], message: `unknown hypervisor data point "${spec.metric}" (see host/data-points.ts for the list)` })
  }
  if (kpi !== undefined && 'error' in kpi) {
    ctx.addIssue({ code: 'custom', path: ['metric'], message: kpi.error })
    return
  }
  if (spec.format === 'processed' && !spec.function) {
    ctx.addIssue({ code: 'custom', path: ['function'], message: 'processed format needs a function (min, max, mean or median)' })
  }
  if (spec.format === 'raw' && spec.function) {
    ctx.addIssue({ code: 'custom', path: ['function'], message: 'a raw specifier takes no function' })
  }
  // Contract 3: an encrypted KPI (kpi:TABLE) is raw only; the host can neither process nor compare sealed values.
  if (kpi !== undefined && kpi.column === undefined) {
    if (spec.format !== 'raw') ctx.addIssue({ code: 'custom', path: ['format'], message: 'an encrypted KPI (kpi:TABLE) is delivered raw only' })
    if (spec.when) ctx.addIssue({ code: 'custom', path: ['when'], message: 'an encrypted KPI (kpi:TABLE) is opaque: no predicate can be evaluated on it' })
  }
})

/** The VM descriptor's parts the monitoring side reads; other parts (placement, resources) pass through. */
export const DescriptorSchema = z.object({
  id: z.string().min(1),
  primarySite: z.object({
    id: z.string().min(1),
    /** The primary site's sealing public key (X25519, base64): `encrypt` seals for it. */
    publicKey: z.string().regex(BASE64_KEY, 'must be a base64 32-byte key'),
  }).passthrough(),
  monitoring: z.array(SpecifierSchema).default([]),
}).passthrough()

export type Specifier = z.infer<typeof SpecifierSchema>
export type VmDescriptor = z.infer<typeof DescriptorSchema>

/** Validates a descriptor; the error names the field (`monitoring[2].function: …`). */
export function parseDescriptor (json: unknown, source: string): VmDescriptor {
  const result = DescriptorSchema.safeParse(json)
  if (!result.success) throw new AgentError('DESCRIPTOR_INVALID', `${source}: ${describeIssues(result.error)}`)
  return result.data
}

/** A valid specifier's KPI (table and column; no column for an encrypted KPI), or undefined for a hypervisor data point. */
export function kpiTarget (metric: string): KpiTarget | undefined {
  if (!metric.startsWith('kpi:')) return undefined
  const target = parseKpiMetric(metric)
  if ('error' in target) throw new Error(`not a valid KPI metric (descriptors are validated at load): ${target.error}`)
  return target
}
