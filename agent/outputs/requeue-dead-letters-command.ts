import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { loadConfig } from '../config/agent-config'
import { AgentError } from '../errors'
import { requeueDeadLetters } from '../state/dead-letters'
import { consumerName } from './outbox-consumer'

/** How long the requeue waits for the running agent's write transaction to end (its transactions take milliseconds). */
const BUSY_TIMEOUT_MS = 10_000

export interface RequeueOptions {
  config: string
  /** The seqs `fedvm agent dead-letters` printed; undefined: every entry (`--all`). */
  seqs?: readonly number[]
  consumer?: string
  /** Only entries refused with this code. */
  reason?: string
}

/**
 * `fedvm agent dead-letters --config FILE --requeue (--id N ... | --all) [--consumer NAME] [--reason CODE]`:
 * moves dead letters back into the outbox once the operator fixed their cause (a descriptor, a host
 * key at the site), in one transaction, beside the running agent (which sends them within a
 * second) or while it is stopped (it sends them when it starts). Only entries of consumers the
 * config has are moved. A named seq that is not selected moves nothing and is an error naming it.
 * Prints one JSON object a line per delivery moved.
 */
export async function requeueDeadLettersCommand (options: RequeueOptions, out: (line: string) => void): Promise<number> {
  const config = await loadConfig(options.config)
  const configured = config.consumers.map(consumerName)
  const consumers = options.consumer === undefined ? configured : configured.filter((c) => c === options.consumer)
  if (options.consumer !== undefined && consumers.length === 0) {
    throw new AgentError('DEAD_LETTER_NOT_FOUND', `--consumer ${options.consumer}: the config has no such consumer (it has: ${configured.join(', ') || 'none'}); nothing requeued`)
  }
  const file = join(config.stateDir, 'agent.db')
  if (!existsSync(file)) {
    if (options.seqs !== undefined) throw notFound(options.seqs)
    return 0
  }
  const db = new Database(file, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS })
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'").get() !== undefined
    if (!hasTable) {
      if (options.seqs !== undefined) throw notFound(options.seqs)
      return 0
    }
    const moved = db.transaction(() => {
      const letters = requeueDeadLetters(db, { seqs: options.seqs, consumers, code: options.reason }, Date.now())
      const missing = (options.seqs ?? []).filter((seq) => !letters.some((l) => l.seq === seq))
      // Thrown inside the transaction: it rolls back, so a mistyped id moves none of the others either.
      if (missing.length > 0) throw notFound(missing)
      return letters
    }).immediate()
    for (const l of moved) out(JSON.stringify({ requeued: l.seq, consumer: l.consumer, id: l.id, vm: l.vm, code: l.code }))
    return moved.length
  } finally {
    db.close()
  }
}

function notFound (seqs: readonly number[]): AgentError {
  return new AgentError('DEAD_LETTER_NOT_FOUND', `no dead letter ${seqs.join(', ')} to requeue (not in the store, or not of the consumers and reason given, or of a consumer the config no longer has); nothing requeued`)
}
