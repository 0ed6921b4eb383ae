/** Shared by the site-to-site live-migration tests: the guest's disk, and what a libvirtd says of a domain. */
import { open } from 'node:fs/promises'
import type { LibvirtHost } from '../../support/vm/libvirt-host'

export { BOOT_MARKER } from '../../host/libvirt/support/live-pair'

/** A sparse raw disk of `mib` MiB (the guest writes its first blocks every second). */
export async function backingFreeDisk (path: string, mib: number): Promise<void> {
  const fd = await open(path, 'w')
  await fd.truncate(mib * 1024 * 1024)
  await fd.close()
}

/** The domain's state as virsh prints it, or 'absent'. */
export async function stateOf (host: LibvirtHost, vm: string): Promise<string> {
  return (await host.virsh('domstate', vm).catch(() => 'absent')).trim()
}

/** The guest's loop writes its disk every second: its write count grows while it runs. */
export async function guestWritesOn (host: LibvirtHost, vm: string, timeoutMs = 20_000): Promise<boolean> {
  const writes = async (): Promise<number> => Number(/vda wr_req (\d+)/.exec(await host.virsh('domblkstat', vm, 'vda').catch(() => ''))?.[1] ?? -1)
  const first = await writes()
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    if (await writes() > first) return true
  }
  return false
}
