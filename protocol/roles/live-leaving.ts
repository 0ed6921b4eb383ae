import type { Server } from 'node:net'
import { LIVE_CHANNELS } from '../../host/libvirt/live-params'
import { liveStatusesAgree, type LiveStatus } from '../../host/libvirt/live-status'
import type { VmHost } from '../../host/vm-folder/vm-host'
import { ProtocolError } from '../errors'
import type { Log } from '../log'
import type { StreamPark } from '../proxy/stream-relay'
import { PERFORMED_CHANNEL, signalFrame } from '../proxy/stream-signal'
import type { SourceTicket } from '../proxy/ticket'
import type { TokenRecord } from '../proxy/token-record'
import { checkNotExpired } from '../proxy/tokens'
import { faultPoint } from './fault-point'
import { liveMigrationId, liveMigrationProgress, type LiveSessions } from './live-sessions'
import type { ProgressBoard } from './migration-progress'
import type { LivePerformed, VerificationAnswer } from './partner-answers'

/**
 * The Source's part of a live migration (libvirt's Begin, Perform and Confirm on this site's own
 * libvirtd). Until Confirm the domain is this site's: Perform that fails leaves it running here, one
 * that succeeds leaves it paused here until the Controller's decision (confirm: it goes; cancel: it
 * resumes here). QEMU's streams leave through this site's proxy only (the stream park), on
 * connections the Destination parked with the token bound to its certificate.
 */
export interface LiveLeavingDeps {
  live: LiveSessions
  /** The stream park of each transfer proxy (by the proxy's index). */
  streams: readonly StreamPark[]
  progress: Pick<ProgressBoard, 'report' | 'end'>
  log: Log
}

/** Begin, for a prepared source token: what the sealed ticket carries to the Destination. */
export async function beginLiveLeaving (deps: LiveLeavingDeps, host: VmHost, vmId: string, token: string): Promise<NonNullable<SourceTicket['live']>> {
  if (host.beginLiveLeaving === undefined) throw new ProtocolError('unsupported-vm', 'the VM\'s host cannot migrate it live')
  const source = await host.beginLiveLeaving(vmId, liveMigrationId(token))
  deps.live.leaving.set(token, { source })
  const { xml, cookie, disks, memoryBytes } = source.offer
  return { xml, cookie: cookie.toString('base64'), disks, memoryBytes }
}

/**
 * Perform: the Source's QEMU sends the disks and memory through this proxy's stream park while the
 * guest runs; progress goes to the site's board every ~500 ms. A failed Perform leaves the VM
 * running here (libvirt resumes it) and is not retried: the Controller decides abort.
 */
export async function performLive (deps: LiveLeavingDeps, record: TokenRecord, destinationCookie: string): Promise<LivePerformed> {
  const session = deps.live.leaving.get(record.token)
  if (session === undefined) throw new ProtocolError('transfer-failed', 'the source no longer holds this live migration (it restarted)', { retryable: false })
  if (session.performed !== undefined) return performedAnswer(session.performed)
  const park = deps.streams[record.proxy]
  if (park === undefined) throw new ProtocolError('internal', 'internal error', { cause: new Error(`no stream park for proxy ${record.proxy}`) })
  const listening: Server[] = []
  const started = Date.now()
  try {
    // The sockets listen before Perform starts: libvirt checks that the NBD socket exists.
    for (const channel of LIVE_CHANNELS) listening.push(await park.listen(record.token, channel, session.source.socketPath(channel)))
    let logged = 0
    const performed = await session.source.perform(Buffer.from(destinationCookie, 'base64'), {
      onProgress: (p) => {
        const progress = liveMigrationProgress(p)
        deps.progress.report(record.vmId, progress)
        faultPoint('source:performing')
        if (progress.at - logged < 1000) return
        logged = progress.at
        deps.log({ event: 'live-progress', vm: record.vmId, phase: progress.phase, remainingBytes: progress.remainingBytes, totalBytes: progress.totalBytes, iteration: progress.iteration })
      },
      progressEveryMs: 500,
    })
    session.performed = performed
    // The Destination Finishes on this at once, before this answer has reached the Controller.
    const signalled = await park.signal(record.token, PERFORMED_CHANNEL, signalFrame(performed.toString('base64')))
    deps.log({ event: 'live-performed', vm: record.vmId, ms: Date.now() - started, downtimeMs: downtimeOf(performed) ?? null, signalled })
    return performedAnswer(performed)
  } catch (err) {
    deps.log({ event: 'live-perform-failed', vm: record.vmId, ms: Date.now() - started, error: (err as Error).message })
    throw new ProtocolError('transfer-failed', 'the live migration did not complete; the VM runs at the source', { cause: err, retryable: false })
  } finally {
    for (const server of listening) server.close()
    park.release(record.token)
    deps.progress.end(record.vmId)
  }
}

/** Transfer verification of a live migration: sstat from Perform's cookie (see live-status.ts). */
export function verifyLive (deps: LiveLeavingDeps, record: TokenRecord, dstat: LiveStatus): VerificationAnswer {
  const session = deps.live.leaving.get(record.token)
  if (session === undefined) throw new ProtocolError('transfer-failed', 'the source no longer holds this live migration (it restarted)', { retryable: false })
  const sstat = session.source.status(session.performed ?? Buffer.alloc(0))
  if (!liveStatusesAgree(dstat, sstat)) return { state: 'pending', status: sstat }
  if (record.state === 'open') {
    checkNotExpired(record)
    deps.log({ event: 'transfer-verified', vm: record.vmId, path: 'live' })
  }
  return { state: 'verified', status: sstat }
}

/**
 * libvirt's Confirm on the session this process still holds: `cancelled` false removes the paused
 * domain here (the Destination runs it), true resumes it here. Without a session (this process
 * restarted) there is nothing to confirm: the host's release or stayHere ends it.
 */
export async function confirmLive (deps: LiveLeavingDeps, token: string, finishCookie: string | undefined, cancelled: boolean): Promise<void> {
  const session = deps.live.leaving.get(token)
  if (session === undefined) return
  try {
    await session.source.confirm(Buffer.from(finishCookie ?? '', 'base64'), cancelled)
  } catch (err) {
    // Confirm has nothing to do when Perform never ran; the host's stayHere or release still acts.
    deps.log({ event: 'live-confirm-failed', cancelled, error: (err as Error).message })
  }
  await session.source.close().catch(() => {})
  deps.live.leaving.delete(token)
}

function performedAnswer (cookie: Buffer): LivePerformed {
  const downtimeMs = downtimeOf(cookie)
  return { cookie: cookie.toString('base64'), ...(downtimeMs === undefined ? {} : { downtimeMs }) }
}

/** libvirt's measured downtime, from the statistics Perform's cookie carries. */
function downtimeOf (cookie: Buffer): number | undefined {
  const value = /<downtime>(\d+)<\/downtime>/.exec(cookie.toString('utf8'))?.[1]
  return value === undefined ? undefined : Number(value)
}
