import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FEED_CURSOR } from '../../host/vm-folder/vm-folder'
import type { Handover } from './follow-guest'

/**
 * The hand-over file in a discovered VM's folder (`vmDir/ID/`, host/vm-folder/libvirt-host.ts):
 * the agent's cursor written when the VM's feed ended (QEMU exited after `virsh save`/shutdown).
 * It travels with the VM's files, so the next host's agent starts after rows whose ack never
 * reached the guest.
 */
export function writeHandover (vmFolder: string, epoch: string, seq: bigint): void {
  const path = join(vmFolder, FEED_CURSOR)
  const partial = `${path}.${process.pid}.tmp`
  writeFileSync(partial, `${JSON.stringify({ epoch, seq: seq.toString(), final: true })}\n`)
  renameSync(partial, path) // a reader never sees half a file
}

/** The hand-over in the VM's folder; undefined when there is none or it is unreadable (the guest's ack is then the fallback). */
export function readHandover (vmFolder: string): Handover | undefined {
  try {
    const value = JSON.parse(readFileSync(join(vmFolder, FEED_CURSOR), 'utf8')) as Record<string, unknown>
    if (typeof value.epoch !== 'string' || typeof value.seq !== 'string' || !/^\d{1,20}$/.test(value.seq)) return undefined
    return { epoch: value.epoch, seq: BigInt(value.seq) }
  } catch {
    return undefined
  }
}
