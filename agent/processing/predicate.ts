import { compare, type Comparison, type ComparisonOp } from '../../protocol/primary/rules/comparison'

/**
 * Scheme (c) of the paper: deliver only when a predicate on the value holds. The comparison is the
 * monitoring rules' (protocol/ may not import agent/, agent/ may import protocol/); this list keeps
 * the order the descriptor's errors name the operators in.
 */
export const PREDICATE_OPS = ['>', '>=', '<', '<=', '==', '!='] as const satisfies readonly ComparisonOp[]
export type PredicateOp = typeof PREDICATE_OPS[number]

export type Predicate = Comparison

export function holds (predicate: Predicate | undefined, value: number): boolean {
  return predicate === undefined || compare(predicate, value)
}
