import { LIVE_CHANNELS } from '../../host/libvirt/live-params'
import type { VmHost } from '../../host/vm-folder/vm-host'
import { ProtocolError, toProtocolError } from '../errors'
import type { Log } from '../log'
import { StreamParker } from '../proxy/stream-relay'
import { PERFORMED_CHANNEL, readSignal } from '../proxy/stream-signal'
import type { SourceTicket } from '../proxy/ticket'
import type { TokenStore } from '../proxy/token-record'
import { liveMigrationId, type LiveSessions } from './live-sessions'
import type { TokenLocks } from './token-locks'
import type { LiveFinished, LivePrepared } from './partner-answers'

/**
 * The Destination's part of a live migration (libvirt's Prepare and Finish on this site's own
 * libvirtd). The incoming domain is the migration's, not a VM of this site, until the Controller's
 * decision: commit makes it this host's (confirm), abort destroys it (abandon), also after a Finish
 * that made it run here. Its streams come in on connections this site parks at the Source's proxy
 * (the proxy named in the sealed ticket, its certificate pinned, this site's presented).
 *
 * Finish starts as soon as the Source says, on one more parked channel, that Perform is done (its
 * cookie): the guest's pause then lasts no longer than the streams take, not also the round trip
 * through the Controller and the Intermediaries. The Controller's live-finish joins that Finish. Both
 * run under the token's settlement lock, as an abort does: whichever comes first wins, and the other
 * sees it (an aborted arrival does not Finish; a Finished one is destroyed by the abort).
 */
export interface LiveArrivalDeps {
  live: LiveSessions
  tokens: Pick<TokenStore, 'setTokenState' | 'token'>
  settling: Pick<TokenLocks, 'run'>
  log: Log
}

/** Perform's cookie on the in-band channel: as long as the protocol's cookie field allows. */
const PERFORMED_MAX_BYTES = 65536 + 1

/**
 * Prepare, then one parked stream connection per channel at the Source's proxy, presenting
 * `clientCert` (the certificate the Source's token is bound to). Idempotent per token.
 */
export async function prepareLiveArrival (deps: LiveArrivalDeps, host: VmHost, token: string, vmId: string, ticket: SourceTicket, clientCert: { key: string, cert: string }): Promise<LivePrepared> {
  const running = deps.live.arriving.get(token)
  if (running !== undefined) return { cookie: running.destination.cookie.toString('base64') }
  if (ticket.live === undefined) throw new ProtocolError('bad-request', 'the source ticket carries no live migration')
  if (host.prepareLiveArrival === undefined) throw new ProtocolError('transfer-failed', 'the offered host cannot take a VM live', { retryable: false })
  const started = Date.now()
  const destination = await host.prepareLiveArrival(vmId, liveMigrationId(ticket.token), { ...ticket.live, cookie: Buffer.from(ticket.live.cookie, 'base64') })
  const parkers = LIVE_CHANNELS.map((channel) => new StreamParker({
    url: ticket.uri, fingerprint: ticket.fingerprint, token: ticket.token, channel, clientCert,
    targetPath: destination.socketPath(channel), log: deps.log,
  }))
  parkers.push(new StreamParker({
    url: ticket.uri, fingerprint: ticket.fingerprint, token: ticket.token, channel: PERFORMED_CHANNEL, clientCert, log: deps.log,
    take: (socket, rest) => {
      readSignal(socket, rest, PERFORMED_MAX_BYTES).then(
        async (cookie) => await joinLiveFinish(deps, token, vmId, cookie, 'source'),
        (err: Error) => deps.log({ event: 'live-performed-signal-failed', vm: vmId, error: err.message })
      ).catch((err) => deps.log({ event: 'live-finish-failed', vm: vmId, by: 'source', code: toProtocolError(err).code }))
    },
  }))
  const expected = { memory: ticket.live.memoryBytes, disks: ticket.live.disks.reduce((n, d) => n + d.bytes, 0) }
  deps.live.arriving.set(token, { vmId, since: Date.now(), step: 'prepared', expected, destination, parkers })
  deps.log({ event: 'live-prepared', vm: vmId, ms: Date.now() - started })
  return { cookie: destination.cookie.toString('base64') }
}

/**
 * Finish once per arrival, for whichever asks first: `by` the Source in-band or the Controller. The
 * later one gets the first one's outcome; after an abort both are refused.
 */
export async function joinLiveFinish (deps: LiveArrivalDeps, token: string, vmId: string, performCookie: string, by: 'source' | 'controller'): Promise<LiveFinished> {
  return await deps.settling.run(token, async () => {
    const state = deps.tokens.token(token)?.state
    if (state === 'cancelled') throw new ProtocolError('transfer-cancelled', 'the offer was cancelled here')
    const done = deps.live.finished.get(token)
    if (done instanceof ProtocolError) throw done
    if (done !== undefined) return done
    if (state !== 'open') throw new ProtocolError('transfer-cancelled', `the offer was ${state ?? 'withdrawn'} here`)
    try {
      const finished = await finishLiveArrival(deps, token, vmId, performCookie, by)
      deps.live.finished.set(token, finished)
      return finished
    } catch (err) {
      const e = toProtocolError(err)
      if (!e.retryable) deps.live.finished.set(token, e)
      throw e
    }
  })
}

/**
 * Finish: with Perform's cookie the domain resumes here (the VM now runs here, still pending the
 * Controller's decision); answers dstat. A Finish that failed leaves nothing running here.
 */
async function finishLiveArrival (deps: LiveArrivalDeps, token: string, vmId: string, performCookie: string, by: 'source' | 'controller'): Promise<LiveFinished> {
  const session = deps.live.arriving.get(token)
  if (session === undefined) throw new ProtocolError('transfer-failed', 'the destination no longer holds this live migration (it restarted)', { retryable: false })
  const started = Date.now()
  let finished: { uuid: string, cookie: Buffer } | undefined
  session.step = 'finishing'
  try {
    finished = await session.destination.finish(Buffer.from(performCookie, 'base64'), false)
  } catch (err) {
    deps.log({ event: 'live-finish-failed', vm: vmId, by, error: (err as Error).message })
    await endLiveArrival(deps, token)
    throw new ProtocolError('transfer-failed', 'the destination could not finish the live migration', { cause: err, retryable: false })
  }
  if (finished === undefined) throw new ProtocolError('transfer-failed', 'the destination could not finish the live migration', { retryable: false })
  session.step = 'verifying'
  const status = await session.destination.status().catch((err: Error) => {
    deps.log({ event: 'live-status-failed', vm: vmId, error: err.message })
    return { uuid: finished!.uuid, disks: [], job: 'incomplete' as const }
  })
  // Finish done: nothing of the session is needed again (abort now destroys the domain through the host).
  deps.live.arriving.delete(token)
  for (const parker of session.parkers) parker.close()
  await session.destination.close().catch(() => {})
  // Runs here now, pending the decision: a restart finds it in doubt and asks the Controller.
  deps.tokens.setTokenState(token, 'received')
  deps.log({ event: 'live-finished', vm: vmId, by, ms: Date.now() - started, joined: session.parkers.reduce((n, p) => n + p.joined, 0) })
  return { status, cookie: finished.cookie.toString('base64') }
}

/** Ends this process's part (an abort, or the decision reached): Finish is cancelled where it had not run, the connection closes. */
export async function endLiveArrival (deps: LiveArrivalDeps, token: string): Promise<void> {
  deps.live.finished.delete(token)
  const session = deps.live.arriving.get(token)
  if (session === undefined) return
  deps.live.arriving.delete(token)
  for (const parker of session.parkers) parker.close()
  await session.destination.finish(Buffer.alloc(0), true).catch(() => {})
  await session.destination.close().catch(() => {})
}
