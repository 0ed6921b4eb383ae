import { toProtocolError } from '../errors'
import type { SiteContext } from './site-context'

/**
 * Undoes what expired tokens prepared: a source VM prepared for leaving runs on where it is, a
 * destination's partial files are dropped (unless a pull is still running), old routes are forgotten.
 */
export async function sweepExpired (site: SiteContext, now = Date.now()): Promise<void> {
  for (const token of site.state.expiredOpenTokens(now)) {
    if (site.pulls.has(token.token)) continue
    try {
      const host = site.host(token.hostId, token.vmId)
      if (token.role === 'source') await host.stayHere(token.vmId)
      else if (!await host.has(token.vmId)) await host.abandon(token.vmId)
      site.state.setTokenState(token.token, 'expired')
      site.log({ event: 'token-expired', role: token.role, vm: token.vmId })
    } catch (err) {
      site.log({ event: 'sweep-failed', vm: token.vmId, code: toProtocolError(err).code })
    }
  }
  site.state.dropExpiredRoutes(now)
}
