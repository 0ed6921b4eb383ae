import { z } from 'zod'
import { isDataPointName } from '../../host/data-points'
import type { ComparisonOp } from '../primary/rules/comparison'
import { parseKpiMetric } from './kpi-metric'

/**
 * A monitoring specifier of the VM descriptor (DESIGN.md Contract 3), declared here so the host
 * agent that runs it and every site that passes a descriptor update on check it alike: an update
 * the agent would refuse is refused before any version moves.
 */

/** The paper's processing functions over one delivery window (section IV). */
export const PROCESSING_FUNCTIONS = ['min', 'max', 'mean', 'median'] as const
export type ProcessingFunction = typeof PROCESSING_FUNCTIONS[number]

/** Scheme (c)'s predicate operators, in the order the descriptor's errors name them; the comparison is the monitoring rules'. */
export const PREDICATE_OPS = ['>', '>=', '<', '<=', '==', '!='] as const satisfies readonly ComparisonOp[]
export type PredicateOp = typeof PREDICATE_OPS[number]

/** A KPI (`kpi:TABLE.COLUMN`, `kpi:TABLE`: its grammar is kpi-metric.ts) or a hypervisor data point. */
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

export type Specifier = z.infer<typeof SpecifierSchema>
