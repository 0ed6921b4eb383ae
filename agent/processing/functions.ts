import type { ProcessingFunction } from '../../protocol/descriptor/specifier-schema'

/**
 * Applies a function to a window's values; undefined for an empty window. The median is exact:
 * the middle value, or the mean of the two middle values for an even count.
 */
export function applyFunction (fn: ProcessingFunction, values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  switch (fn) {
    case 'min': return values.reduce((a, b) => (b < a ? b : a))
    case 'max': return values.reduce((a, b) => (b > a ? b : a))
    case 'mean': return values.reduce((a, b) => a + b, 0) / values.length
    case 'median': return median(values)
  }
}

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
