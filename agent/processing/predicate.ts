/** Scheme (c) of the paper: deliver only when a predicate on the value holds. */
export const PREDICATE_OPS = ['>', '>=', '<', '<=', '==', '!='] as const
export type PredicateOp = typeof PREDICATE_OPS[number]

export interface Predicate {
  op: PredicateOp
  value: number
}

export function holds (predicate: Predicate | undefined, value: number): boolean {
  if (!predicate) return true
  switch (predicate.op) {
    case '>': return value > predicate.value
    case '>=': return value >= predicate.value
    case '<': return value < predicate.value
    case '<=': return value <= predicate.value
    case '==': return value === predicate.value
    case '!=': return value !== predicate.value
  }
}
