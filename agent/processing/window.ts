import type { ProcessingFunction } from '../../protocol/descriptor/specifier-schema'
import { applyFunction } from './functions'
import { holds, type Predicate } from './predicate'

/**
 * One measurement: when it was taken (ms) and its value (a number; a KPI integer beyond ±2^53 is a
 * bigint, kept exact in raw deliveries; sealed values are base64 strings).
 */
export interface Sample {
  ts: number
  value: number | bigint | string
}

/** What one delivery window yields: the raw samples, or one processed value. */
export type WindowResult =
  | { format: 'raw', samples: Sample[] }
  | { format: 'processed', function: ProcessingFunction, value: number }

export interface WindowSpec {
  format: 'raw' | 'processed'
  function?: ProcessingFunction
  when?: Predicate
}

/**
 * What one delivery window's samples yield: a pure stage with no clock or I/O (the samples live in
 * the agent store, so a window survives a restart). Opaque windows (a sealed KPI) pass through raw.
 */
export function evaluate (spec: WindowSpec, samples: Sample[], opaque = false): WindowResult | undefined {
  if (samples.length === 0) return undefined
  if (spec.format === 'raw' || opaque) {
    const kept = opaque ? samples : samples.filter((s) => holds(spec.when, Number(s.value)))
    return kept.length > 0 ? { format: 'raw', samples: kept } : undefined
  }
  const fn = spec.function ?? 'mean'
  const value = applyFunction(fn, samples.map((s) => Number(s.value)))
  if (value === undefined || !holds(spec.when, value)) return undefined
  return { format: 'processed', function: fn, value }
}
