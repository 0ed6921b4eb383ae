/**
 * Captures one bulk-statistics reply from a real libvirtd twice, back to back: the RPC reply body
 * (what LibvirtHypervisor decodes) as NAME.xdr and `virsh domstats --raw` for the same groups as
 * NAME.virsh.txt, into test/host/fixtures/. The e2e test refreshes them when FEDVM_CAPTURE_FIXTURES=1.
 */
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { LibvirtHypervisor } from '../../../host/libvirt/libvirt-hypervisor'

const run = promisify(execFile)

/** The groups of host/libvirt STATS_GROUPS, as virsh options. */
export const VIRSH_GROUPS = ['--state', '--cpu-total', '--balloon', '--vcpu', '--interface', '--block']

export async function captureStatsFixture (socketPath: string, dir: string, name: string): Promise<void> {
  const hv = new LibvirtHypervisor({ socketPath })
  try {
    const reply = await hv.getDomainStatsReply()
    const { stdout } = await run('virsh', ['-r', '-c', `qemu+unix:///system?socket=${socketPath}`, 'domstats', '--raw', ...VIRSH_GROUPS])
    await writeFile(join(dir, `${name}.xdr`), reply)
    await writeFile(join(dir, `${name}.virsh.txt`), stdout)
  } finally {
    await hv.close()
  }
}
