import { z } from 'zod'
import { progressLine } from '../../host/libvirt/live-progress'
import { arrivalLine, liveArrival, LiveArrivalSchema } from '../roles/arrival-progress'
import { MigrationProgressSchema } from '../roles/migration-progress'
import type { SiteParts } from './site-parts'

/**
 * What `fedvm site status` answers (admin-status), in one place for every reader: the CLI's human
 * output, the dashboard, scripts that read the JSON. Only what this site itself knows: where its VMs
 * went (a host of its own, or only the partner it handed them to) and figures of running migrations.
 */
export const SiteStatusSchema = z.object({
  id: z.string(),
  locations: z.array(z.object({ vmId: z.string(), kind: z.string(), target: z.string(), upstream: z.string().nullable() })),
  /** The migrations this site runs as Controller: `progress` is what either end last reported (null: no figures yet). */
  migrations: z.array(z.object({ vmId: z.string(), since: z.number(), progress: MigrationProgressSchema.nullable() })),
  /** The migrations whose data moves at this site now: a cold pull as Destination, a live job as Source. */
  transfers: z.array(MigrationProgressSchema.extend({ vmId: z.string() })),
  /**
   * The live migrations arriving here, as this site sees them (the bytes through its end of the stream
   * relay: its libvirtd reports no job for an incoming migration). Absent in an older daemon's answer.
   */
  arrivals: z.array(LiveArrivalSchema).default([]),
  /** Arrivals complete here but not this site's until the Controller's decision reaches it. */
  inDoubt: z.array(z.object({ vmId: z.string(), state: z.string() })),
})
export type SiteStatus = z.infer<typeof SiteStatusSchema>

export function siteStatus (site: Pick<SiteParts, 'self' | 'state' | 'active' | 'progress' | 'live'>, now = Date.now()): SiteStatus {
  return {
    id: site.self,
    locations: site.state.locations().map(({ vmId, kind, target, upstream }) => ({ vmId, kind, target, upstream })),
    migrations: site.active.list(),
    transfers: site.progress.list(),
    arrivals: [...site.live.arriving.values()].map((session) => liveArrival(session, now)),
    inDoubt: site.state.inDoubtTokens().filter((t) => t.role === 'destination').map((t) => ({ vmId: t.vmId, state: 'incoming, in doubt' })),
  }
}

/** One running migration as the Controller sees it: the progress line, or what it is waiting for. */
export function migrationLine (migration: SiteStatus['migrations'][number], now = Date.now()): string {
  if (migration.progress === null) return `Migration: waiting for figures (running ${Math.round((now - migration.since) / 1000)} s)`
  return progressLine(migration.progress)
}

/** `fedvm site status` on a terminal: the same content as the JSON, a line each. */
export function statusText (status: SiteStatus, now = Date.now()): string {
  const lines = [`site ${status.id}`]
  lines.push(status.locations.length === 0 ? 'VMs: none' : 'VMs:')
  for (const l of status.locations) lines.push(`  ${l.vmId}: ${l.kind === 'partner' ? `partner ${l.target}` : `${l.kind} ${l.target}`}${l.upstream === null ? '' : ` (from ${l.upstream})`}`)
  if (status.migrations.length > 0) lines.push('migrating (this site is the Controller):')
  for (const m of status.migrations) lines.push(`  ${m.vmId}: ${migrationLine(m, now)}`)
  if (status.transfers.length > 0) lines.push('data moving here:')
  for (const p of status.transfers) lines.push(`  ${p.vmId}: ${progressLine(p)} (${p.path})`)
  if (status.arrivals.length > 0) lines.push('arriving live here:')
  for (const a of status.arrivals) lines.push(`  ${a.vmId}: ${arrivalLine(a)}`)
  if (status.inDoubt.length > 0) lines.push('arrived, waiting for the Controller\'s decision:')
  for (const d of status.inDoubt) lines.push(`  ${d.vmId}: ${d.state}`)
  return `${lines.join('\n')}\n`
}
