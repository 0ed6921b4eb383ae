import { applyFunction, type ProcessingFunction } from './functions'
import { holds, type Predicate } from './predicate'

/** One measurement: when it was taken (ms) and its value (a number; sealed values are base64 strings). */
export interface Sample {
  ts: number
  value: number | string
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
 * The samples of one delivery window: a pure stage (add, flush, reset) with no clock or I/O.
 * Non-numeric values are refused at add(): only sealed passthrough windows hold strings.
 */
export class Window {
  private samples: Sample[] = []

  constructor (private readonly spec: WindowSpec, private readonly opaque = false) {}

  /** Adds a sample; returns false (and keeps nothing) for a value this window cannot process. */
  add (sample: Sample): boolean {
    if (!this.opaque && (typeof sample.value !== 'number' || !Number.isFinite(sample.value))) return false
    this.samples.push(sample)
    return true
  }

  get size (): number {
    return this.samples.length
  }

  /** The window's result, or undefined when there is nothing to deliver (empty, or the predicate fails); then empties it. */
  flush (): WindowResult | undefined {
    const samples = this.samples
    this.reset()
    return evaluate(this.spec, samples, this.opaque)
  }

  reset (): void {
    this.samples = []
  }
}

/** The pure core of flush(), also used to recompute a window restored from disk. */
export function evaluate (spec: WindowSpec, samples: Sample[], opaque = false): WindowResult | undefined {
  if (samples.length === 0) return undefined
  if (spec.format === 'raw' || opaque) {
    const kept = opaque ? samples : samples.filter((s) => holds(spec.when, s.value as number))
    return kept.length > 0 ? { format: 'raw', samples: kept } : undefined
  }
  const fn = spec.function ?? 'mean'
  const value = applyFunction(fn, samples.map((s) => s.value as number))
  if (value === undefined || !holds(spec.when, value)) return undefined
  return { format: 'processed', function: fn, value }
}
