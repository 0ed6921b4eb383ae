import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { loadConfig } from '../config/agent-config'
import { readDeadLetters } from '../state/dead-letters'

/**
 * `fedvm agent dead-letters --config FILE [--consumer NAME] [--limit N]`: prints the deliveries
 * set aside in the agent's dead-letter store, oldest first, one JSON object a line: when and why
 * each was refused and the delivery as it was queued (its numbers digit for digit). It reads
 * `stateDir/agent.db` beside the running agent and changes nothing.
 */
export async function printDeadLetters (options: { config: string, consumer?: string, limit: number }, out: (line: string) => void): Promise<number> {
  const config = await loadConfig(options.config)
  const file = join(config.stateDir, 'agent.db')
  if (!existsSync(file)) return 0
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    const letters = readDeadLetters(db, { consumer: options.consumer, limit: options.limit })
    for (const l of letters) {
      const head = JSON.stringify({ seq: l.seq, consumer: l.consumer, id: l.id, vm: l.vm, refusedAt: new Date(l.refusedAt).toISOString(), status: l.status, code: l.code, detail: l.detail })
      // The body is the queued JSON text itself, so an integer beyond 2^53 prints exactly.
      out(`${head.slice(0, -1)},"delivery":${l.body}}`)
    }
    return letters.length
  } finally {
    db.close()
  }
}
