/**
 * A rule's comparison of a value with a threshold. The agent's `when` predicate
 * (agent/processing/predicate.ts) compares with this too: agent/ may import protocol/, not the reverse.
 */
export const COMPARISON_OPS = ['>=', '<=', '==', '!=', '>', '<'] as const
export type ComparisonOp = typeof COMPARISON_OPS[number]

/** The operators as a regular-expression alternation, two-character ones first. */
export const PREDICATE_OPS_TEXT = COMPARISON_OPS.join('|')

export interface Comparison {
  op: ComparisonOp
  value: number
}

export function compare (comparison: Comparison, value: number): boolean {
  switch (comparison.op) {
    case '>': return value > comparison.value
    case '>=': return value >= comparison.value
    case '<': return value < comparison.value
    case '<=': return value <= comparison.value
    case '==': return value === comparison.value
    case '!=': return value !== comparison.value
  }
}
