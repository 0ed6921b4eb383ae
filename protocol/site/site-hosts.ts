import { DirHost } from '../../host/vm-folder/dir-host'
import { IntakeHost } from '../../host/vm-folder/intake-host'
import { LibvirtVmHost } from '../../host/vm-folder/libvirt-host'
import type { VmHost } from '../../host/vm-folder/vm-host'
import { ProtocolError } from '../errors'
import type { Log } from '../log'
import type { HostDirectory } from '../roles/host-directory'
import type { HostConfig } from './config'

/** The site's VM hosts as its config lists them: a directory of VM files, or VMs on a libvirt connection. */
export class SiteHosts implements HostDirectory {
  private readonly hosts: Map<string, VmHost>

  constructor (configs: readonly HostConfig[], log: Log) {
    this.hosts = new Map(configs.map((h): [string, VmHost] => [h.id, h.libvirt === undefined
      ? new DirHost(h.id, h.vmDir, h.maxVms)
      : new LibvirtVmHost({ id: h.id, uri: h.libvirt.uri, leaveBy: h.libvirt.leaveBy, maxDowntimeMs: h.libvirt.maxDowntimeMs, completionTimeoutMs: h.libvirt.completionTimeoutMs, migrationBandwidthMiBs: h.libvirt.migrationBandwidthMiBs, downtimeRamp: h.libvirt.downtimeRamp, vmDir: h.vmDir, maxVms: h.maxVms, memoryMiB: h.memoryMiB, vcpus: h.vcpus, log: (message) => log({ event: 'host', host: h.id, message }) })]))
  }

  get (hostId: string, vmId: string): VmHost {
    if (hostId.startsWith('intake:')) return new IntakeHost(vmId, hostId.slice('intake:'.length))
    const host = this.hosts.get(hostId)
    if (host === undefined) throw new ProtocolError('internal', 'internal error', { cause: new Error(`no host ${hostId}`) })
    return host
  }

  all (): Iterable<VmHost> {
    return this.hosts.values()
  }

  has (hostId: string): boolean {
    return this.hosts.has(hostId)
  }

  /** Adds or replaces a host (tests put hosts that fail on purpose beside the configured ones). */
  set (id: string, host: VmHost): void {
    this.hosts.set(id, host)
  }
}
