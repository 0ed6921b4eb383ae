import { LIVE_CHANNELS } from '../../host/libvirt/live-params'
import type { VmHost } from '../../host/vm-folder/vm-host'
import { ProtocolError } from '../errors'
import type { Log } from '../log'
import { StreamParker } from '../proxy/stream-relay'
import type { SourceTicket } from '../proxy/ticket'
import type { TokenStore } from '../proxy/token-record'
import { liveMigrationId, type LiveSessions } from './live-sessions'
import type { LiveFinished, LivePrepared } from './partner-answers'

/**
 * The Destination's part of a live migration (libvirt's Prepare and Finish on this site's own
 * libvirtd). The incoming domain is the migration's, not a VM of this site, until the Controller's
 * decision: commit makes it this host's (confirm), abort destroys it (abandon), also after a Finish
 * that made it run here. Its streams come in on connections this site parks at the Source's proxy
 * (the proxy named in the sealed ticket, its certificate pinned, this site's presented).
 */
export interface LiveArrivalDeps {
  live: LiveSessions
  tokens: Pick<TokenStore, 'setTokenState'>
  log: Log
}

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
  deps.live.arriving.set(token, { destination, parkers })
  deps.log({ event: 'live-prepared', vm: vmId, ms: Date.now() - started })
  return { cookie: destination.cookie.toString('base64') }
}

/**
 * Finish: with Perform's cookie the domain resumes here (the VM now runs here, still pending the
 * Controller's decision); answers dstat. A Finish that failed leaves nothing running here.
 */
export async function finishLiveArrival (deps: LiveArrivalDeps, token: string, vmId: string, performCookie: string): Promise<LiveFinished> {
  const session = deps.live.arriving.get(token)
  if (session === undefined) throw new ProtocolError('transfer-failed', 'the destination no longer holds this live migration (it restarted)', { retryable: false })
  const started = Date.now()
  let finished: { uuid: string, cookie: Buffer } | undefined
  try {
    finished = await session.destination.finish(Buffer.from(performCookie, 'base64'), false)
  } catch (err) {
    deps.log({ event: 'live-finish-failed', vm: vmId, error: (err as Error).message })
    await endLiveArrival(deps, token)
    throw new ProtocolError('transfer-failed', 'the destination could not finish the live migration', { cause: err, retryable: false })
  }
  if (finished === undefined) throw new ProtocolError('transfer-failed', 'the destination could not finish the live migration', { retryable: false })
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
  deps.log({ event: 'live-finished', vm: vmId, ms: Date.now() - started, joined: session.parkers.reduce((n, p) => n + p.joined, 0) })
  return { status, cookie: finished.cookie.toString('base64') }
}

/** Ends this process's part (an abort, or Finish done): Finish is cancelled where it had not run, the connection closes. */
export async function endLiveArrival (deps: LiveArrivalDeps, token: string): Promise<void> {
  const session = deps.live.arriving.get(token)
  if (session === undefined) return
  deps.live.arriving.delete(token)
  for (const parker of session.parkers) parker.close()
  await session.destination.finish(Buffer.alloc(0), true).catch(() => {})
  await session.destination.close().catch(() => {})
}
