import { originCode, toProtocolError } from '../errors'
import type { Log } from '../log'
import { askPartner } from './intermediary'
import type { ActiveMigrations } from './active-migrations'
import type { MigrationProgress } from './migration-progress'
import type { MigrationRecord } from './migration-record'
import { ProgressAnswerSchema } from './partner-answers'
import { handleMigrationProgress, PROGRESS_QUERY_TIMEOUT_MS, type ProgressQueryDeps } from './progress-query'

/** How often the Controller asks while a transfer runs: often enough for a smooth progress line, and each ask is a cheap read. */
export const PROGRESS_POLL_MS = 500

export interface ProgressWatchDeps extends ProgressQueryDeps {
  active: Pick<ActiveMigrations, 'report' | 'has'>
  log: Log
}

interface End {
  end: MigrationEnd
  /** Where the Controller sends it: this site, or the partner through which that end is reached. */
  via: string
  body: Record<string, unknown>
  ref?: string
}

export type MigrationEnd = 'destination' | 'source'

/** One end's answer in a round: figures, null (nothing moves there now), or undefined (not asked, or no answer). */
export interface EndAnswer { end: MigrationEnd, progress: MigrationProgress | null | undefined }

/**
 * Whose answer the Controller keeps from one round; undefined keeps the last figures.
 * - cold: the first end with figures, the Destination's first (its pull moves the files); else a null.
 * - live: the Source's. Its libvirt job knows what is left, the memory pass and the dirty rate; the
 *   Destination's libvirtd has no job for an incoming migration, so the Destination knows only the
 *   bytes that came (arrival-progress.ts). The Source's null is kept too (its job has not begun, or
 *   is over: the Destination's estimate must not stand in for it). The Destination's answer serves
 *   only when the Source gave none: unreachable, or too old for the query.
 */
export function chooseAnswer (live: boolean, answers: readonly EndAnswer[]): { end: MigrationEnd, progress: MigrationProgress | null } | undefined {
  const of = (end: MigrationEnd): MigrationProgress | null | undefined => answers.find((a) => a.end === end)?.progress
  if (live) {
    for (const end of ['source', 'destination'] as const) {
      const progress = of(end)
      if (progress !== undefined) return { end, progress }
    }
    return undefined
  }
  const figures = answers.find((a) => a.progress != null)
  if (figures !== undefined) return { end: figures.end, progress: figures.progress! }
  const none = answers.find((a) => a.progress === null)
  return none === undefined ? undefined : { end: none.end, progress: null }
}

/**
 * While one migration attempt moves the VM (cold or live: the attempt's record names both ends), the
 * Controller asks both ends for progress every `intervalMs` and keeps the newest figures in `active`.
 * It learns amounts and rates, never where: each question travels the chain the migration's own
 * operations travel. Which end's figures count is chooseAnswer's rule. Once the end that counts
 * answers with figures only that end is asked, until it has none (for a live migration, also once it
 * gives no answer: the next round asks the Destination too, as the fallback). An
 * end that cannot be reached costs only this round's figures; one that does not know the operation
 * (a partner older than it) is not asked again. The function it returns stops it (an answer still on
 * its way is then dropped); it also stops by itself once the Controller has let the VM go (`active`
 * no longer lists it) or `decided()` says the attempt is decided.
 */
export function watchProgress (deps: ProgressWatchDeps, migration: MigrationRecord, { decided = () => false, intervalMs = PROGRESS_POLL_MS }: { decided?: () => boolean, intervalMs?: number } = {}): () => void {
  const { vmId } = migration
  const ends: End[] = [
    { end: 'destination', via: migration.via, body: { vmId, end: 'destination' }, ref: migration.offerRef },
    { end: 'source', via: migration.sourceVia, body: { vmId, end: 'source', token: migration.sourceToken } },
  ]
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let wake: (() => void) | undefined
  let answering: End | undefined
  const failing = new Map<End, string>()

  const ask = async (end: End): Promise<MigrationProgress | null | undefined> => {
    try {
      const answer = end.via === deps.self
        ? await handleMigrationProgress(deps, { sender: deps.self }, end.body, end.ref)
        : await askPartner(deps, end.via, 'migration-progress', end.body, ProgressAnswerSchema, { ...(end.ref === undefined ? {} : { ref: end.ref }), timeoutMs: PROGRESS_QUERY_TIMEOUT_MS, quiet: true })
      failing.delete(end)
      return answer.progress
    } catch (err) {
      const e = toProtocolError(err)
      const code = originCode(e)
      // Logged when the reason changes, not every round.
      if (failing.get(end) !== code) deps.log({ event: 'progress-unavailable', vm: vmId, end: end.end, code })
      failing.set(end, code)
      if (code === 'unknown-operation') ends.splice(ends.indexOf(end), 1)
      return undefined
    }
  }

  const live = migration.live !== undefined
  const round = async (): Promise<void> => {
    const asked = answering !== undefined && ends.includes(answering) ? [answering] : [...ends]
    const answers = await Promise.all(asked.map(async (end) => ({ end: end.end, progress: await ask(end) })))
    if (stopped) return
    const chosen = chooseAnswer(live, answers)
    if (chosen === undefined) {
      // The live Source did not answer: the next round asks the Destination too.
      if (live) answering = undefined
      return
    }
    // An end with nothing moving now (not started, or done): ask both again. A live Destination's figures are a stand-in: the Source is asked again too.
    answering = chosen.progress === null || (live && chosen.end !== 'source') ? undefined : ends.find((e) => e.end === chosen.end)
    deps.active.report(vmId, chosen.progress)
  }

  const over = (): boolean => stopped || ends.length === 0 || !deps.active.has(vmId) || decided()
  void (async () => {
    while (!over()) {
      await round()
      if (stopped) break
      await new Promise<void>((resolve) => {
        wake = resolve
        timer = setTimeout(resolve, intervalMs)
      })
    }
  })().catch((err) => deps.log({ event: 'progress-watch-failed', vm: vmId, error: (err as Error).message }))

  return () => {
    stopped = true
    clearTimeout(timer)
    wake?.()
  }
}
