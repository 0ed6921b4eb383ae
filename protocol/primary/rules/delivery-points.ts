import { sampleAsDouble } from '../../relay/delivery'
import type { OpenedDelivery } from '../sealed-opener'
import type { Point } from './rule-evaluator'

/** The numeric points of one delivery: each raw sample at its ts, a processed value at the window's end (`to`). */
export function pointsOf (d: OpenedDelivery): Point[] {
  const base = { vm: d.vm, metric: d.metric, sealed: d.wasSealed }
  if (d.format === 'processed') {
    return d.value !== undefined && Number.isFinite(d.value) ? [{ ...base, selector: d.function ?? 'processed', ts: d.to, value: d.value }] : []
  }
  const points: Point[] = []
  for (const s of d.samples ?? []) {
    const value = sampleAsDouble(s.value)
    if (value !== undefined && Number.isFinite(value)) points.push({ ...base, selector: 'raw', ts: s.ts, value })
  }
  return points
}
