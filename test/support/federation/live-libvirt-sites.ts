/**
 * The set-up the site-to-site live-migration tests share: libvirtds of their own (each in its own
 * namespaces), a Federation of `fedvm site run` processes on loopback whose hosts are connections to
 * them, and a running test guest placed at one of those hosts through the site's intake.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Federation, type SiteSpec } from '../../protocol/support/federation'
import type { Teardownable } from '../teardownable'
import { ensureGuestImage, type GuestImage } from '../vm/guest-image'
import { chooseDomainType } from '../vm/kvm-probe'
import { LibvirtHost } from '../vm/libvirt-host'
import { liveTestLimits } from '../vm/tcg-live-downtime'
import { domainXml, waitGuestReady } from '../vm/test-domain'

/** One host of a site on one of the started libvirtds; `libvirt` adds host settings (maxDowntimeMs, migrationBandwidthMiBs, …) over the TCG test limits (vm/tcg-live-downtime.ts). */
export interface LiveHostSpec {
  id: string
  on: LibvirtHost
  maxVms?: number
  libvirt?: Record<string, unknown>
}

export interface LiveSites {
  fed: Federation
  libvirtds: LibvirtHost[]
  image: GuestImage
  type: 'qemu' | 'kvm'
  /** Random per run: it names the libvirtds, and tests use it in VM and host ids. */
  tag: string
}

/**
 * Starts `libvirtds` libvirtds and the sites, each site's hosts as `hosts` gives them; `beforeStart`
 * runs once the sites' folders exist and before their daemons start. Everything started is stopped
 * at t's teardown, also when a later step fails.
 */
export async function startLiveSites (t: Teardownable, o: {
  sites: SiteSpec[]
  libvirtds: number
  hosts: (libvirtds: LibvirtHost[], tag: string) => Record<string, LiveHostSpec[]>
  beforeStart?: (fed: Federation) => Promise<void>
}): Promise<LiveSites> {
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const libvirtds = await LibvirtHost.startAll(t, Array.from({ length: o.libvirtds }, (_, i) => ({ tag: `${tag}${'xyzw'[i]}` })))
  const fed = await Federation.create(o.sites)
  t.teardown(() => fed.close())
  for (const [site, hosts] of Object.entries(o.hosts(libvirtds, tag))) {
    await fed.reconfigure(site, (c) => {
      c.hosts = hosts.map((h) => ({ id: h.id, vmDir: fed.vmDir(site, h.id), maxVms: h.maxVms ?? 1, libvirt: { uri: h.on.uri, ...liveTestLimits(type), ...h.libvirt } }))
    })
  }
  await o.beforeStart?.(fed)
  await fed.start()
  return { fed, libvirtds, image, type, tag }
}

/**
 * Places the test guest `vmId` at `site` (its intake picks the host; `host` names the one expected,
 * whose folder holds the console log) and waits until it has booted. `disk(path)` writes its disk.
 * Answers the domain's UUID at `on`, the libvirtd of that host.
 */
export async function placeRunningGuest (live: LiveSites, o: {
  site: string
  host: string
  on: LibvirtHost
  vmId: string
  memoryMiB: number
  disk: (path: string) => Promise<void>
  bootTimeoutMs?: number
}): Promise<string> {
  const { fed } = live
  const intake = join(fed.root, 'intake')
  await mkdir(intake, { recursive: true })
  await o.disk(join(intake, 'disk.img'))
  await writeFile(join(intake, 'domain.xml'), domainXml({ name: o.vmId, type: live.type, image: live.image, memoryMiB: o.memoryMiB, disk: join(intake, 'disk.img'), consoleLog: join(intake, 'console.log') }))
  await writeFile(join(fed.root, 'descriptor.json'), JSON.stringify({ id: o.vmId }))
  const placed = await fed.cli(o.site, 'place', '--vm', o.vmId, '--dir', intake, '--descriptor', join(fed.root, 'descriptor.json'))
  if (placed.code !== 0) throw new Error(`fedvm place at ${o.site} failed (${String(placed.code)}): ${placed.raw.stdout}${placed.raw.stderr}`)
  await waitGuestReady({ name: o.vmId, uuid: '', disk: '', consoleLog: join(fed.vmDir(o.site, o.host), o.vmId, 'console.log') }, o.bootTimeoutMs ?? 120_000)
  return (await o.on.virsh('domuuid', o.vmId)).trim()
}
