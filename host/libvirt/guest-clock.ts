import { HypervisorError } from '../errors'
import { setDomainTime } from './rpc/domain-time'
import { RpcConnection } from './rpc/rpc-connection'

export interface GuestClockOptions {
  /** The libvirt URI the host uses (qemu:///system, or qemu+unix:///system?socket=PATH). */
  uri: string
  domain: string
  /** How long to keep trying while the guest agent does not answer yet (default 60 s). */
  timeoutMs?: number
  /** Pause between tries (default 1 s). */
  retryMs?: number
  log?: (line: string) => void
}

const DEFAULT_SOCKET = '/run/libvirt/libvirt-sock'

/**
 * A restored guest's clock stands where it was when the VM was saved: set it from the host's clock
 * through the guest agent (what Nova and KubeVirt do after resume and migration). The agent may not
 * answer for a while after the restore, so this tries again until it does or the time is up.
 * Resolves true when the clock was set, false when it was not (no agent configured, or no answer).
 */
export async function syncGuestClock (options: GuestClockOptions): Promise<boolean> {
  const { socketPath, uri } = rpcTarget(options.uri)
  const until = Date.now() + (options.timeoutMs ?? 60_000)
  let last: unknown
  for (let attempt = 1; ; attempt++) {
    try {
      const conn = await RpcConnection.open(socketPath, uri, { timeoutMs: 10_000 })
      try {
        await setDomainTime(conn, options.domain, Date.now, { timeoutMs: 10_000 })
      } finally {
        await conn.close()
      }
      options.log?.(`guest clock of ${options.domain} set from the host's (attempt ${attempt})`)
      return true
    } catch (err) {
      last = err
      // A domain without a guest agent channel will never answer, and one that is gone has no clock: nothing to wait for.
      if (err instanceof HypervisorError && (err.code === 'DOMAIN_NOT_FOUND' || /guest agent is not configured/i.test(err.message))) break
    }
    if (Date.now() + (options.retryMs ?? 1000) >= until) break
    // Best effort in the background: the wait never keeps a process alive.
    await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 1000).unref())
  }
  options.log?.(`guest clock of ${options.domain} not set: ${(last as Error)?.message ?? String(last)}`)
  return false
}

/** The unix socket and the URI to open on it, from a URI virsh takes. */
export function rpcTarget (uri: string): { socketPath: string, uri: string } {
  const parsed = new URL(uri)
  const socketPath = parsed.searchParams.get('socket') ?? DEFAULT_SOCKET
  const driver = parsed.protocol.replace(/\+[a-z]+:$/, ':')
  return { socketPath, uri: `${driver}//${parsed.pathname}` }
}
