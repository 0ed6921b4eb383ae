/**
 * bench/hypervisor-groups: what each libvirt statistics group costs at scrape time. On a private
 * libvirtd with N domains (one running TCG guest, the rest paused, as bench/hypervisor-scrape), one
 * bulk call (virConnectGetAllDomainStats) per group alone: the QEMU monitor (QMP) commands libvirtd
 * sends for it (libvirtd's debug log, switched on through its admin socket) and the call's wall time
 * (p50 of --calls). The libvirt collector chooses what to read at every scrape and what to keep
 * between scrapes from this table.
 *
 *   node dist/bench/hypervisor-groups.js [--domains 30] [--calls 10] [--out bench/results/hypervisor-groups.json]
 * Needs root; starts its own libvirtd.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { STATS_GROUPS, type StatsGroup } from '../host/hypervisor'
import { LibvirtHypervisor } from '../host/libvirt/libvirt-hypervisor'
import { ensureGuestImage } from '../test/support/vm/guest-image'
import { chooseDomainType } from '../test/support/vm/kvm-probe'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { startTestDomain, waitGuestReady } from '../test/support/vm/test-domain'

const run = promisify(execFile)
const DIST = join(__dirname, '..')

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * q))] }
const round = (x: number): number => Math.round(x * 100) / 100

async function main (): Promise<void> {
  const domains = Number(arg('domains', '30'))
  const calls = Number(arg('calls', '10'))
  const out = arg('out', join(DIST, '..', 'bench', 'results', 'hypervisor-groups.json'))
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const host = await LibvirtHost.start({ tag: 'hvgroups' })
  const hypervisor = new LibvirtHypervisor({ socketPath: host.readOnlySocketPath })
  const result: Record<string, unknown> = { date: new Date().toISOString(), domains, calls, domainType: type }
  try {
    for (let i = 0; i < domains; i++) {
      const vm = await startTestDomain(host, { name: `fedvm-groups-${i}`, image, type, paused: i >= 1, memoryMiB: i >= 1 ? 64 : 128 })
      if (i < 1) await waitGuestReady(vm)
    }
    result.uptimeBefore = (await run('uptime')).stdout.trim()
    const sets: Array<{ name: string, groups: StatsGroup[] }> = [
      ...STATS_GROUPS.map((g) => ({ name: g, groups: [g] })),
      { name: 'all', groups: [...STATS_GROUPS] },
    ]
    const admin = ['-c', `libvirtd:///system?socket=${join(host.dir, 'run', 'libvirt-admin-sock')}`]
    const daemonLog = join(host.dir, 'log', 'libvirtd.log')
    const table: Record<string, { qmpPerDomain: Record<string, number>, wallP50Ms: number }> = {}
    for (const set of sets) {
      // Warm-up, then the wall time with the debug log off.
      await hypervisor.getDomainStats({ groups: set.groups })
      const wall: number[] = []
      for (let i = 0; i < calls; i++) {
        const t0 = process.hrtime.bigint()
        await hypervisor.getDomainStats({ groups: set.groups })
        wall.push(Number(process.hrtime.bigint() - t0) / 1e6)
      }
      await run('virt-admin', [...admin, 'daemon-log-filters', '1:qemu.qemu_monitor 4:*'])
      await run('virt-admin', [...admin, 'daemon-log-outputs', '1:file:/var/log/libvirt/libvirtd.log'])
      const before = (await readFile(daemonLog)).length
      await hypervisor.getDomainStats({ groups: set.groups })
      await new Promise((resolve) => setTimeout(resolve, 300))
      await run('virt-admin', [...admin, 'daemon-log-outputs', '3:file:/var/log/libvirt/libvirtd.log'])
      const text = (await readFile(daemonLog)).subarray(before).toString()
      const counts: Record<string, number> = {}
      for (const m of text.matchAll(/QEMU_MONITOR_SEND_MSG.*?"execute\\?":\s*\\?"([^"\\]+)/g)) counts[m[1]] = (counts[m[1]] ?? 0) + 1
      const perDomain = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, round(v / domains)]))
      table[set.name] = { qmpPerDomain: perDomain, wallP50Ms: round(quantile(wall, 0.5)) }
      console.log(`${set.name.padEnd(10)} wall p50 ${table[set.name].wallP50Ms} ms  QMP per domain ${JSON.stringify(perDomain)}`)
    }
    result.groups = table
    result.uptimeAfter = (await run('uptime')).stdout.trim()
    console.log(result.uptimeAfter)
  } finally {
    await hypervisor.close()
    await host.stop()
  }
  result.libvirt = (await run('libvirtd', ['--version'])).stdout.trim()
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify(result, null, 2) + '\n')
  console.log(`written ${out}`)
}

main().catch((err) => { console.error(err); process.exit(1) })
