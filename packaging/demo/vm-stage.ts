import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Children } from './children'
import { federationShapes } from './dir-stage'
import { startHostAgents } from './host-agents'
import { startSites } from './sites'
import type { Stage } from './story'

const run = promisify(execFile)

const VM_ID = 'kpi-vm'
/** The image's sample app writes `sample` (a counter, one row a second), `current_users` and `load`. */
const RULE = { name: 'counter-high', when: 'raw(kpi:users.sample) > 12 for 3s' }

/** What the demo uses of the test harness's private libvirt host (test/support/vm/libvirt-host.ts). */
interface LibvirtHost { uri: string, readOnlySocketPath: string, stop: () => Promise<void> }
interface LibvirtHostModule { LibvirtHost: { start: (o: { tag: string }) => Promise<LibvirtHost> } }

/** The test VM image's files (packaging/vm-image/build, cached by the e2e tests). */
interface VmImage { dir: string, qcow2: string, kernel: string, initramfs: string, domainTemplate: string }

/**
 * A real VM: site C's two hosts are two private libvirtds (each in its own network namespace, as
 * the e2e tests start them), the VM is packaging/vm-image's (guestfs and a sample app inside, the KPI
 * feed on its virtio-serial port). It boots under TCG, and a Forced migration moves it live from one
 * libvirtd to the other (leaveBy live, the default for libvirt hosts).
 */
export async function vmStage (children: Children, root: string, say: (line: string) => void): Promise<Stage> {
  const image = await findVmImage()
  const harness = join(__dirname, '..', '..', 'test', 'support', 'vm', 'libvirt-host.js')
  if (!existsSync(harness)) throw new Error(`--vm starts libvirtd with the test harness (${harness}), which a source checkout builds; the package does not hold it`)
  const { LibvirtHost } = require(harness) as LibvirtHostModule
  say(`fedvm demo --vm: three sites on 127.0.0.1, site-c's hosts two private libvirtds; the VM image ${image.dir}; work folder ${root} (Ctrl-C stops and cleans up)`)

  const tag = randomBytes(3).toString('hex')
  const hostIds = ['c1', 'c2']
  const starting = hostIds.map((id) => LibvirtHost.start({ tag: `${tag}${id}` }))
  // Registered before the start finishes: a Ctrl-C while libvirtd starts still stops it.
  for (const [i, start] of starting.entries()) {
    children.afterStop(async () => {
      const host = await start.catch(() => undefined)
      if (host === undefined) return undefined
      await host.stop()
      return `libvirt host ${hostIds[i]} stopped (its domains, daemons and namespace)`
    })
  }
  const libvirt = new Map((await Promise.all(starting)).map((host, i) => [hostIds[i], host]))
  say(`libvirtd running for site-c's hosts ${hostIds.join(' and ')} (in their own network namespaces ${hostIds.map((id) => `fedvm-${tag}${id}`).join(' and ')})`)

  const cHosts = hostIds.map((id) => ({ id, maxVms: 1, libvirt: { uri: libvirt.get(id)!.uri } }))
  const [a, b, c] = await startSites(children, root, federationShapes(RULE, cHosts))
  say(`keys made (fedvm keygen): ${[a, b, c].map((s) => `${s.id} ${s.keys.publicKey.slice(0, 8)}…`).join(', ')}; partners exchanged keys and TLS fingerprints: A↔B, B↔C`)
  say(`sites running (fedvm site run): ${[a, b, c].map((s) => `${s.id} ${s.url} (${s.shape.role})`).join(' · ')}; A's rule: ${RULE.when} → Forced migration`)

  const descriptor = {
    id: VM_ID,
    primarySite: { id: a.id, publicKey: a.keys.sealPublicKey },
    monitoring: [
      { metric: 'kpi:users.sample', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
      { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 10_000, format: 'processed', function: 'median' },
      { metric: 'kpi:users.load', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw', encrypt: true },
    ],
  }
  const intake = await makeIntake(image, join(root, 'intake', VM_ID), descriptor)
  say(`the VM: a copy of the image's disk, a domain XML with the KPI channel org.fedvm.kpi.0, its descriptor (users.load sealed for site-a by the host agent)`)
  const agents = await startHostAgents(children, root, c, (id) => ({ type: 'libvirt', socket: libvirt.get(id)!.readOnlySocketPath }))
  say(`host agents (fedvm agent run) on site-c's hosts ${agents.map((x) => x.hostId).join(' and ')}: no VM configured, each follows the running domains of its VM folder and posts to site-c's ingest`)

  return {
    a,
    b,
    c,
    vm: { id: VM_ID, intake },
    agents,
    rule: RULE,
    sealed: { metric: 'kpi:users.load' },
    patienceMs: 300_000,
    surge: async () => 'the VM\'s sample app counts one row a second: once its counter passes 12 for 3 s, A\'s rule holds',
  }
}

/** The newest built VM image in the e2e tests' cache (FEDVM_VM_CACHE, default /var/cache/fedvm-test). */
async function findVmImage (): Promise<VmImage> {
  const cache = process.env.FEDVM_VM_CACHE ?? '/var/cache/fedvm-test'
  const names = await readdir(cache).catch(() => [] as string[])
  const built = await Promise.all(names.filter((n) => /^vm-image-[0-9a-f]{12}$/.test(n)).map(async (n) => ({ dir: join(cache, n), mtime: (await stat(join(cache, n))).mtimeMs })))
  const newest = built.sort((x, y) => y.mtime - x.mtime)[0]
  if (newest === undefined) {
    throw new Error(`--vm needs the test VM image (${cache}/vm-image-*), which the e2e tests build once: ` +
      'run node_modules/.bin/tap test/e2e/vm-migration.test.ts (3-6 min the first time), then fedvm demo --vm again')
  }
  const dir = newest.dir
  return { dir, qcow2: join(dir, 'fedvm-vm.qcow2'), kernel: join(dir, 'vmlinux'), initramfs: join(dir, 'initramfs.cpio'), domainTemplate: join(dir, 'domain.xml.in') }
}

/**
 * The folder `fedvm site place` takes: a standalone copy of the image's disk (the transfer carries one
 * file), the domain XML from the image's template with its disk, channel and console inside the
 * folder (the Destination rewrites those paths into its VM directory) and the descriptor.
 */
async function makeIntake (image: VmImage, dir: string, descriptor: Record<string, unknown>): Promise<string> {
  await mkdir(dir, { recursive: true })
  await run('cp', ['--sparse=always', image.qcow2, join(dir, 'disk.qcow2')])
  const fill: Record<string, string> = { NAME: VM_ID, DISK: join(dir, 'disk.qcow2'), KERNEL: image.kernel, INITRD: image.initramfs, CHANNEL: join(dir, 'kpi.sock'), CONSOLE: join(dir, 'console.log') }
  const xml = (await readFile(image.domainTemplate, 'utf8')).replace(/@([A-Z]+)@/g, (_, key: string) => fill[key] ?? `@${key}@`)
  if (/@[A-Z]+@/.test(xml)) throw new Error(`a placeholder of ${image.domainTemplate} is left unfilled`)
  await writeFile(join(dir, 'domain.xml'), xml)
  await writeFile(join(dir, 'descriptor.json'), `${JSON.stringify(descriptor, null, 2)}\n`)
  return dir
}
