/**
 * A small test VM on a LibvirtHost: the cached kernel + initramfs, a raw disk (vda), one virtio
 * NIC on the host's br0, a serial console written to a file, and a memballoon reporting statistics
 * every 2 s. TCG (`type='qemu'`) unless KVM boots a stock kernel here (see kvm-probe.ts).
 */
import { open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GuestImage } from './guest-image'
import { READY_MARKER } from './guest-image'
import type { LibvirtHost } from './libvirt-host'

export interface TestDomainOptions {
  name: string
  image: GuestImage
  type: 'qemu' | 'kvm'
  memoryMiB?: number
  diskMiB?: number
  /** Start paused (no guest CPU time; the QEMU process and its monitor exist). */
  paused?: boolean
}

export interface TestDomain {
  name: string
  uuid: string
  consoleLog: string
  disk: string
}

/**
 * `consoleSocket`: the serial console as a unix socket QEMU listens on (a host reading it timestamps
 * each line on its own clock) instead of the `consoleLog` file; `tickMs`: the guest prints a numbered
 * tick line there every so many ms (see guest-image.ts).
 */
export function domainXml (o: { name: string, type: string, image: GuestImage, memoryMiB: number, disk: string, consoleLog: string, consoleSocket?: string, tickMs?: number }): string {
  const serial = o.consoleSocket === undefined
    ? `<serial type='file'>
      <source path='${o.consoleLog}'/>
      <target port='0'/>
    </serial>`
    : `<serial type='unix'>
      <source mode='bind' path='${o.consoleSocket}'/>
      <target port='0'/>
    </serial>`
  // no_timer_check: a TCG guest starved of CPU (a loaded machine) can fail the kernel's boot-time check
  // that the timer interrupt ticks ("IO-APIC + timer doesn't work!", a panic before userspace); QEMU's
  // i440fx wires the timer correctly, so the check only adds that failure.
  return `<domain type='${o.type}'>
  <name>${o.name}</name>
  <memory unit='MiB'>${o.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${o.image.kernel}</kernel>
    <initrd>${o.image.initramfs}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 no_timer_check${o.tickMs === undefined ? '' : ` fedvm.tick_ms=${o.tickMs}`}</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${o.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
    ${serial}
    <memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>
  </devices>
</domain>
`
}

/** Defines the domain (and its disk, a sparse raw file) and starts it. */
export async function startTestDomain (host: LibvirtHost, o: TestDomainOptions): Promise<TestDomain> {
  const disk = join(host.dir, `${o.name}.img`)
  const consoleLog = join(host.dir, `${o.name}.console.log`)
  const fd = await open(disk, 'w')
  await fd.truncate((o.diskMiB ?? 8) * 1024 * 1024)
  await fd.close()
  const xmlFile = join(host.dir, `${o.name}.xml`)
  await writeFile(xmlFile, domainXml({ name: o.name, type: o.type, image: o.image, memoryMiB: o.memoryMiB ?? 128, disk, consoleLog }))
  await host.virsh('define', xmlFile)
  await host.virsh('start', o.name, ...(o.paused === true ? ['--paused'] : []))
  const uuid = (await host.virsh('domuuid', o.name)).trim()
  return { name: o.name, uuid, consoleLog, disk }
}

/** Waits for the guest's init to print its ready marker on the serial console. */
export async function waitGuestReady (domain: TestDomain, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const text = await readFile(domain.consoleLog, 'utf8').catch(() => '')
    if (text.includes(READY_MARKER)) return
    if (/Kernel panic/.test(text)) throw new Error(`guest ${domain.name} panicked:\n${text.slice(-2000)}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  const text = await readFile(domain.consoleLog, 'utf8').catch(() => '(no console output)')
  throw new Error(`guest ${domain.name} not ready within ${timeoutMs} ms; console:\n${text.slice(-2000)}`)
}
