import { z } from 'zod'
import type { ByteMeter } from '../proxy/byte-meter'
import type { MigrationProgress } from './migration-progress'

const amount = z.number().min(0).max(Number.MAX_SAFE_INTEGER)

/**
 * The Destination's own steps of a live arrival: Prepare done and the stream connections parked
 * ('prepared': nothing has come yet), bytes coming in ('receiving'), libvirt's Finish running
 * ('finishing'), the arrived domain's disks being read back for the Controller ('verifying').
 */
export const ARRIVAL_PHASES = ['prepared', 'receiving', 'finishing', 'verifying'] as const
export type ArrivalPhase = typeof ARRIVAL_PHASES[number]

/**
 * A live arrival as `fedvm site status` lists it at the Destination. Its libvirtd gives no job
 * statistics for an incoming migration, so these are what this site sees itself: the bytes through
 * its end of the stream relay, per channel. Nothing here names where the VM comes from (the Source's
 * proxy, its certificate, its hosts stay in the sealed ticket).
 */
export const LiveArrivalSchema = z.object({
  vmId: z.string(),
  /** When Prepare was done here (ms since the epoch). */
  since: amount,
  phase: z.enum(ARRIVAL_PHASES),
  /** memory: QEMU's migration stream (every pass, so more than the guest's memory); disks: the NBD stream (allocated data and NBD's own framing). */
  receivedBytes: z.object({ memory: amount, disks: amount }),
  /** Over the last whole seconds (RATE_WINDOW_S), both channels together; until a whole second has passed since the first byte, the average since then (0 until RATE_AFTER). */
  rateBytesPerSecond: amount,
  /** Wall time of these figures. */
  at: amount,
})
export type LiveArrival = z.infer<typeof LiveArrivalSchema>

/** What of a stream parker the figures need (proxy/stream-relay.ts's StreamParker has it). */
export interface ChannelCounter { channel: string, received: Pick<ByteMeter, 'total' | 'firstAt' | 'lastSeconds'> }

/** What of a live arrival session the figures need (live-sessions.ts). */
export interface ArrivalCounters {
  vmId: string
  since: number
  /** The steps this site takes itself; 'receiving' is read from the counters. */
  step: 'prepared' | 'finishing' | 'verifying'
  parkers: readonly ChannelCounter[]
  /** The guest's memory and the disks' sizes, from the sealed ticket: what the Controller's fallback figures count against. */
  expected: { memory: number, disks: number }
}

/** Which figure each relayed channel counts toward (the names of host/libvirt/live-params.ts's LIVE_CHANNELS); other channels carry signals, not data. */
const CHANNEL_FIGURE: Record<string, 'memory' | 'disks'> = { migration: 'memory', nbd: 'disks' }

/** Before this much has come, or this long has passed, an average says little (the first NBD burst lands in a few ms). */
const RATE_AFTER = { bytes: 1024 * 1024, ms: 1000 }
/** The rate's window: long enough to smooth QEMU's bursts, short enough to show a change of phase (the disks' holes, the memory) within seconds. */
const RATE_WINDOW_S = 2

/** The arrival's figures at `now`. Pure: the counters are read, not changed. */
export function liveArrival (session: ArrivalCounters, now: number): LiveArrival {
  const receivedBytes = { memory: 0, disks: 0 }
  const meters = session.parkers.filter((p) => CHANNEL_FIGURE[p.channel] !== undefined)
  let first: number | undefined
  for (const parker of meters) {
    receivedBytes[CHANNEL_FIGURE[parker.channel]] += parker.received.total
    const at = parker.received.firstAt
    if (at !== undefined) first = Math.min(first ?? at, at)
  }
  const total = receivedBytes.memory + receivedBytes.disks
  return {
    vmId: session.vmId,
    since: session.since,
    phase: session.step !== 'prepared' ? session.step : total > 0 ? 'receiving' : 'prepared',
    receivedBytes,
    rateBytesPerSecond: first === undefined ? 0 : recentRate(meters, total, first, now),
    at: now,
  }
}

/** Bytes per second over the last RATE_WINDOW_S whole seconds, counted from the first byte when that came within them. */
function recentRate (meters: readonly ChannelCounter[], total: number, first: number, now: number): number {
  const second = Math.floor(now / 1000) * 1000
  const spanMs = second - Math.max(first, second - RATE_WINDOW_S * 1000)
  if (spanMs >= 1000) return Math.round(meters.reduce((n, p) => n + p.received.lastSeconds(now, RATE_WINDOW_S), 0) / (spanMs / 1000))
  const elapsedMs = Math.max(0, now - first)
  const measurable = total >= RATE_AFTER.bytes || elapsedMs >= RATE_AFTER.ms
  return measurable && elapsedMs > 0 ? Math.round(total / (elapsedMs / 1000)) : 0
}

/**
 * The Destination's answer to the Controller's progress query for a live arrival. The Source's
 * libvirt job has the real figures (what is left, the memory pass, the dirty rate) and the Controller
 * shows those (progress-watch.ts); these serve only when the Source has none. What is left is a
 * rough estimate: the expected amounts less what came, where the memory's later passes count as
 * progress and the disks' holes never come. It has no memory pass, and no 'done': the Source says when it is.
 */
export function arrivalFigures (session: ArrivalCounters, now: number): MigrationProgress {
  const arrival = liveArrival(session, now)
  const received = arrival.receivedBytes.memory + arrival.receivedBytes.disks
  const totalBytes = session.expected.memory + session.expected.disks
  const remainingBytes = Math.max(0, totalBytes - received)
  const rate = arrival.rateBytesPerSecond
  return {
    path: 'live',
    phase: arrival.phase === 'finishing' || arrival.phase === 'verifying' ? 'switchover' : arrival.receivedBytes.memory > 0 ? 'memory' : 'disks',
    totalBytes,
    remainingBytes,
    rateBytesPerSecond: rate,
    ...(rate > 0 ? { etaMs: Math.round(remainingBytes / rate * 1000) } : {}),
    at: now,
  }
}

/** The arrival's line in `fedvm site status` on a terminal. */
export function arrivalLine (a: LiveArrival): string {
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`
  const phase = a.phase === 'prepared' ? 'prepared, waiting for the stream' : a.phase === 'finishing' ? 'Finish running' : a.phase
  return `Arrival: ${phase}, memory ${mib(a.receivedBytes.memory)}, disks ${mib(a.receivedBytes.disks)} received, ${mib(a.rateBytesPerSecond)}/s (for ${Math.round((a.at - a.since) / 1000)} s)`
}
