/** What chooses dead letters to requeue: their seqs (else every one) and the refusal code (else any). */
export interface RequeueChoice {
  seqs?: readonly number[]
  code?: string
}

/**
 * The SQL conditions (joined with AND) and their named parameters that choose the dead letters to
 * requeue, in the agent's dead-letter store and in a relay site's outbox alike: those of the owners
 * given (consumers, next hops: `ownerColumn` in the list), narrowed to `seqs` and `code` when given.
 */
export function requeueConditions (ownerColumn: string, owners: readonly string[], choice: RequeueChoice): { where: string, params: Record<string, unknown> } {
  const params: Record<string, unknown> = { owners: JSON.stringify(owners) }
  const where = [`"${ownerColumn}" IN (SELECT value FROM json_each(@owners))`]
  if (choice.seqs !== undefined) {
    where.push('"seq" IN (SELECT value FROM json_each(@seqs))')
    params.seqs = JSON.stringify(choice.seqs)
  }
  if (choice.code !== undefined) {
    where.push('"code" = @code')
    params.code = choice.code
  }
  return { where: where.join(' AND '), params }
}
