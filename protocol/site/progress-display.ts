import { progressLine } from '../../host/libvirt/live-progress'
import type { MigrationProgress } from '../roles/migration-progress'
import { PROGRESS_POLL_MS } from '../roles/progress-watch'
import { migrationLine, SiteStatusSchema } from './site-status'

/** Where the line is drawn: a terminal (its width, when known, bounds the line so `\r` can redraw it). */
export interface Terminal {
  write: (text: string) => unknown
  columns?: number
}

/**
 * While `running` (the daemon's answer to a migration) is awaited, asks the site's daemon for its
 * status every PROGRESS_POLL_MS and redraws one line with the VM's figures, as `virsh migrate
 * --verbose` does. Resolves once `running` has settled and the line is ended with a newline (after
 * a last "100 %" when the migration succeeded), so the outcome can follow on a line of its own. A
 * status that cannot be had only leaves the line as it was.
 */
export async function showProgressWhile (running: Promise<unknown>, vmId: string, askStatus: () => Promise<unknown>, out: Terminal, intervalMs = PROGRESS_POLL_MS): Promise<void> {
  let settled: 'ok' | 'failed' | undefined
  const done = running.then(() => { settled = 'ok' }, () => { settled = 'failed' })
  let drawn = false
  let last: MigrationProgress | null = null
  const draw = (line: string): void => {
    // A terminal whose size is unknown reports 0 columns: the line goes whole.
    const width = out.columns === undefined || out.columns === 0 ? line.length : Math.max(20, out.columns - 1)
    out.write(`\r${line.slice(0, width)}\x1b[K`)
    drawn = true
  }
  while (settled === undefined) {
    // The daemon may be slow to answer, busy or restarting: the line then stays as it was, and the outcome (or
    // its refusal) never waits for a status still on its way.
    const asking = Promise.resolve().then(askStatus).catch(() => undefined)
    const answer = await Promise.race([asking, done])
    const status = settled === undefined ? SiteStatusSchema.safeParse(answer) : undefined
    const migration = status?.success === true ? status.data.migrations.find((m) => m.vmId === vmId) : undefined
    if (migration !== undefined) {
      last = migration.progress ?? last
      draw(migration.progress === null && last !== null ? progressLine(last) : migrationLine(migration))
    }
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, intervalMs))])
  }
  if (settled === 'ok' && last !== null) draw(progressLine({ ...last, phase: 'done', remainingBytes: 0, etaMs: 0 }))
  if (drawn) out.write('\n')
}
