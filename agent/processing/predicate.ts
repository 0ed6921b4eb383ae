import { compare, type Comparison } from '../../protocol/primary/rules/comparison'

/**
 * Scheme (c) of the paper: deliver only when a predicate on the value holds. The comparison is the
 * monitoring rules' (protocol/ may not import agent/, agent/ may import protocol/); the operators a
 * descriptor may name are protocol/descriptor/specifier-schema.ts's PREDICATE_OPS.
 */
export type Predicate = Comparison

export function holds (predicate: Predicate | undefined, value: number): boolean {
  return predicate === undefined || compare(predicate, value)
}
