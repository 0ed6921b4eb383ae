/**
 * The packaging/vm-image VM (guestfs + the sample app writing /kpi/unencrypted/users every second)
 * handed to a site for primary placement: an intake folder holding a standalone copy of the
 * cached qcow2 (no backing file: the transfer carries one file), the domain XML from the image's
 * template (disk, console log and KPI channel socket named inside the folder, so the Destination
 * rewrites them into its VM directory) and the descriptor.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { VmImage } from '../../packaging/support/artifacts'

const run = promisify(execFile)

export const DISK = 'disk.qcow2'
export const CHANNEL = 'kpi.sock'
export const CONSOLE = 'console.log'

export interface IntakeVm { vmId: string, dir: string, descriptorFile: string, descriptor: Record<string, unknown> }

export async function makeIntake (image: VmImage, dir: string, vmId: string, descriptor: Record<string, unknown>): Promise<IntakeVm> {
  await mkdir(dir, { recursive: true })
  await run('cp', ['--sparse=always', image.qcow2, join(dir, DISK)])
  const fill: Record<string, string> = { NAME: vmId, DISK: join(dir, DISK), KERNEL: image.kernel, INITRD: image.initramfs, CHANNEL: join(dir, CHANNEL), CONSOLE: join(dir, CONSOLE) }
  const xml = (await readFile(image.domainTemplate, 'utf8')).replace(/@([A-Z]+)@/g, (_, key: string) => fill[key] ?? `@${key}@`)
    // The guest's journal on its serial console: a failing test's only window into the guest.
    .replace('panic=-1 quiet', 'panic=-1 systemd.journald.forward_to_console=1')
  if (/@[A-Z]+@/.test(xml)) throw new Error(`a placeholder of ${image.domainTemplate} is left unfilled`)
  await writeFile(join(dir, 'domain.xml'), xml)
  const descriptorFile = join(dir, 'descriptor.json')
  await writeFile(descriptorFile, JSON.stringify(descriptor, null, 2))
  return { vmId, dir, descriptorFile, descriptor }
}

/** The per-row delivery ids' sequence numbers (`vm:spec:EPOCH.seq`): epoch and seq. */
export function rowOf (id: string): { epoch: string, seq: number } | undefined {
  const m = /:([0-9a-f]+)\.(\d+)$/.exec(id)
  return m === null ? undefined : { epoch: m[1], seq: Number(m[2]) }
}
