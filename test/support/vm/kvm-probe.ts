/**
 * Chooses the libvirt domain type for test VMs. On these machines /dev/kvm is missing or served
 * by a hypervisor that cannot run a stock kernel (VM-NOTES.md), so KVM is used only when a quick
 * boot of the test kernel under -accel kvm reaches userspace; the verdict is cached per machine.
 * FEDVM_TEST_DOMAIN_TYPE=qemu|kvm overrides.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GuestImage } from './guest-image'
import { READY_MARKER } from './guest-image'

export async function chooseDomainType (image: GuestImage): Promise<'qemu' | 'kvm'> {
  const forced = process.env.FEDVM_TEST_DOMAIN_TYPE
  if (forced === 'qemu' || forced === 'kvm') return forced
  if (!existsSync('/dev/kvm')) return 'qemu'
  const verdictFile = join(image.dir, 'kvm-verdict')
  const cached = await readFile(verdictFile, 'utf8').catch(() => undefined)
  if (cached === 'kvm\n' || cached === 'qemu\n') return cached.trim() as 'qemu' | 'kvm'
  const verdict = (await kvmBoots(image)) ? 'kvm' : 'qemu'
  await writeFile(verdictFile, `${verdict}\n`).catch(() => {})
  return verdict
}

function kvmBoots (image: GuestImage): Promise<boolean> {
  return new Promise(resolve => {
    const child = spawn('qemu-system-x86_64', [
      '-accel', 'kvm', '-cpu', 'host', '-m', '128', '-nographic', '-no-reboot', '-nic', 'none',
      '-kernel', image.kernel, '-initrd', image.initramfs, '-append', 'console=ttyS0 quiet panic=-1'
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const finish = (ok: boolean): void => { clearTimeout(timer); child.kill('SIGKILL'); resolve(ok) }
    const timer = setTimeout(() => finish(false), 30_000)
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); if (output.includes(READY_MARKER)) finish(true) })
    child.once('error', () => finish(false))
    child.once('close', () => finish(output.includes(READY_MARKER)))
  })
}
