/**
 * Captures one bulk-statistics reply body from a real libvirtd (what LibvirtHypervisor decodes) as
 * NAME.xdr into test/host/fixtures/. The e2e test refreshes it when FEDVM_CAPTURE_FIXTURES=1.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LibvirtHypervisor } from '../../../host/libvirt/libvirt-hypervisor'

/** The groups of host/libvirt STATS_GROUPS, as virsh options (for comparing with `virsh domstats`). */
export const VIRSH_GROUPS = ['--state', '--cpu-total', '--balloon', '--vcpu', '--interface', '--block']

export async function captureStatsFixture (socketPath: string, dir: string, name: string): Promise<void> {
  const hv = new LibvirtHypervisor({ socketPath })
  try {
    await writeFile(join(dir, `${name}.xdr`), await hv.getDomainStatsReply())
  } finally {
    await hv.close()
  }
}
