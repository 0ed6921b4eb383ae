import { createHash } from 'node:crypto'
import type { LiveDestination } from '../../host/libvirt/live-destination'
import type { LiveProgress } from '../../host/libvirt/live-progress'
import type { LiveSource } from '../../host/libvirt/live-source'
import type { ProtocolError } from '../errors'
import type { StreamParker } from '../proxy/stream-relay'
import type { ArrivalCounters } from './arrival-progress'
import type { MigrationProgress } from './migration-progress'
import type { LiveFinished } from './partner-answers'

/**
 * The live migrations this site takes part in, in memory: each side keeps its libvirt connection
 * open from its first phase to its last (libvirt ends the migration when it closes). A restart
 * loses them; what a restarted side does is the host's (stayHere resumes, abandon destroys) once the
 * Controller's decision reaches it.
 */
export class LiveSessions {
  /** The Source's side, by its source token; `performed` holds Perform's cookie once it returned. */
  readonly leaving = new Map<string, { source: LiveSource, performed?: Buffer }>()
  /** The Destination's side, by its destination token, with the stream parkers at the Source's proxy (whose counters `fedvm site status` reads). */
  readonly arriving = new Map<string, ArrivingSession>()
  /**
   * The Destination's Finish outcome by destination token, until the decision: Finish runs once,
   * on the Source's in-band "Perform done" or the Controller's live-finish, and the later one gets it.
   */
  readonly finished = new Map<string, LiveFinished | ProtocolError>()
  /** The Controller's: Finish's cookie by migration id, for the Source's Confirm. */
  readonly finishCookies = new Map<string, string>()
}

/** The Destination's live arrival: its libvirt connection, the parkers, and what site status shows of it (arrival-progress.ts). */
export interface ArrivingSession extends ArrivalCounters {
  destination: LiveDestination
  parkers: StreamParker[]
}

/**
 * The id both libvirtds name the migration's sockets by: derived from the source token, which both
 * ends know (the Destination from the sealed ticket), and which names nothing.
 */
export function liveMigrationId (sourceToken: string): string {
  return createHash('sha256').update(sourceToken).digest('hex').slice(0, 32)
}

/** libvirt's job statistics in the terms of the site's progress board. */
export function liveMigrationProgress (p: LiveProgress, at = Date.now()): MigrationProgress {
  return {
    path: 'live', phase: p.phase, totalBytes: p.totalBytes, remainingBytes: p.remainingBytes, rateBytesPerSecond: p.rateBytesPerSecond,
    ...(p.etaMs === undefined ? {} : { etaMs: p.etaMs }), iteration: p.iteration, dirtyPagesPerSecond: p.dirtyPagesPerSecond, at,
  }
}
