import type { VmHost } from '../../host/vm-folder/vm-host'

/** This site's VM hosts, as the roles reach them. */
export interface HostDirectory {
  /** A host by id; an intake ("intake:DIR") is the owner's directory of a VM being placed. */
  get: (hostId: string, vmId: string) => VmHost
  /** The hosts that take VMs (intakes never do). */
  all: () => Iterable<VmHost>
  /** Whether this site has a host of that id (intakes are not hosts). */
  has: (hostId: string) => boolean
}

/** The host id of where a location record says the VM is (a host of this site, or the intake it is placed from). */
export function hostIdOf (record: { kind: 'host' | 'partner' | 'intake', target: string }): string {
  return record.kind === 'intake' ? `intake:${record.target}` : record.target
}
