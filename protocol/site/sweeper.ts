import { toProtocolError } from '../errors'
import type { Log } from '../log'
import type { TokenStore } from '../proxy/token-record'
import type { HostDirectory } from '../roles/host-directory'
import type { IncomingTransfers } from '../roles/incoming-transfers'
import type { SiteState } from './site-state'

export interface SweeperDeps {
  state: Pick<TokenStore, 'expiredOpenTokens' | 'setTokenState'> & Pick<SiteState, 'dropExpiredRoutes'>
  hosts: Pick<HostDirectory, 'get'>
  transfers: Pick<IncomingTransfers, 'pulls'>
  log: Log
}

/**
 * Undoes what expired tokens prepared: a destination's partial files are dropped (unless a pull is
 * still running), old routes are forgotten. A source VM held for leaving is not the sweeper's: only
 * the Controller's decision may run it here again (roles/resolver.ts asks for it), since its files may
 * already run at the Destination.
 */
export async function sweepExpired (deps: SweeperDeps, now = Date.now()): Promise<void> {
  for (const token of deps.state.expiredOpenTokens(now)) {
    if (deps.transfers.pulls.has(token.token) || token.role === 'source') continue
    try {
      const host = deps.hosts.get(token.hostId, token.vmId)
      if (!await host.has(token.vmId)) await host.abandon(token.vmId)
      deps.state.setTokenState(token.token, 'expired')
      deps.log({ event: 'token-expired', role: token.role, vm: token.vmId })
    } catch (err) {
      deps.log({ event: 'sweep-failed', vm: token.vmId, code: toProtocolError(err).code })
    }
  }
  deps.state.dropExpiredRoutes(now)
}
