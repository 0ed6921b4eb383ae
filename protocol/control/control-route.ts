import type { VmHost } from '../../host/vm-folder/vm-host'
import { ProtocolError } from '../errors'
import type { Log } from '../log'
import type { Caller } from '../roles/caller'
import { hostIdOf, type HostDirectory } from '../roles/host-directory'
import type { PassAlongDeps } from '../roles/intermediary'
import type { LocationRecord, LocationStore } from '../roles/records'
import { primarySiteOf } from './descriptor-version'

/**
 * How a Control operation (paper II-A, IV) travels: from the VM's primary site down the chain of
 * delegation, each site passing it to the one it delegated the VM to, until the site whose host
 * runs it. No site learns more of the chain than its neighbours (location unawareness).
 */
export interface ControlDeps extends PassAlongDeps {
  locations: Pick<LocationStore, 'location' | 'setLocation'>
  hosts: Pick<HostDirectory, 'get'>
  /** policy.controlFrom `primary`: only the VM's primary site may control it; `chain`: any site on its chain of delegation too. */
  config: { policy: { controlFrom: 'primary' | 'chain' } }
  log: Log
}

/** Where a Control operation goes next from this site: a partner further down, or a host of this site. */
export type ControlStep = { record: LocationRecord } & ({ partner: string } | { host: VmHost })

/**
 * The record of a VM this caller may control, and where the operation goes next. A request comes
 * only from the site that delegated the VM here (so it can only travel down the chain); its origin
 * (the first signed hop) must be the VM's primary site, or, under policy `chain`, a site on the chain.
 * `primary` is the primary site as the newest descriptor known here names it (undefined: this hop
 * cannot tell and the host's site decides).
 */
export function controlStep (deps: ControlDeps, caller: Caller, vmId: string, primary = primaryOf(deps, vmId)): ControlStep {
  const record = deps.locations.location(vmId)
  if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
  if (caller.sender !== deps.self && caller.sender !== record.upstream) {
    throw new ProtocolError('not-permitted', `${caller.sender} did not delegate the VM to this site`)
  }
  checkOrigin(deps, caller, primary)
  if (record.kind === 'partner') return { record, partner: record.target }
  if (record.kind === 'intake') throw new ProtocolError('unknown-vm', 'the VM is still being placed')
  return { record, host: deps.hosts.get(hostIdOf(record), vmId) }
}

/** The origin of a Control operation must be the primary site unless policy lets the chain's sites control the VM too. */
export function checkOrigin (deps: Pick<ControlDeps, 'self' | 'config'>, caller: Caller, primary: string | undefined): void {
  const origin = caller.verified?.request.hops[0]?.from ?? deps.self
  if (primary === undefined || origin === primary || deps.config.policy.controlFrom === 'chain') return
  throw new ProtocolError('not-permitted', `only the VM's primary site may control it (policy controlFrom is "primary"); ${origin} is not`)
}

function primaryOf (deps: ControlDeps, vmId: string): string | undefined {
  return primarySiteOf(deps.locations.location(vmId)?.descriptor)
}
