// bench/migrate-live: one running guest moved back and forth live between two private libvirtds,
// alternating fedvm's path (each side's own phases on its own libvirtd, cookies neutralised, QEMU's
// migration and NBD streams through the token-bound TLS stream relay on loopback) with the peer, a
// direct `virsh migrate --live --copy-storage-all` between the same two libvirtds (TCP on the
// namespace's loopback, no proxies). Downtime two ways: libvirt's own figure (the completed job's
// downtime) and a host-clock probe: `ping -i 0.02` at the guest from inside the namespace, the
// longest gap between replies around the switchover (the guest's NIC moves between the two
// libvirtds' taps on one bridge).
// Usage: node dist/bench/migrate-live.js [--rounds 4] [--memory-mib 256] [--disk-mib 128]   (writes bench/results/migrate-live.json)
import { randomBytes, randomFillSync } from 'node:crypto'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readTlsIdentity, writeTlsIdentity } from '../protocol/crypto/tls-certificate'
import { directMigrate, median, PingProbe, sharedNamespace } from './live-peer'
import { relayedLiveMigrate } from './support/relayed-live-migration'
import { ensureGuestImage } from '../test/support/vm/guest-image'
import { chooseDomainType } from '../test/support/vm/kvm-probe'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { domainXml, waitGuestReady } from '../test/support/vm/test-domain'

const MiB = 1024 * 1024

interface Round { mode: 'fedvm' | 'direct', from: string, wallMs: number, libvirtDowntimeMs: number | undefined, libvirtElapsedMs: number | undefined, probeGapMs: number | undefined }

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, 'memory-mib': { type: 'string', default: '256' }, 'disk-mib': { type: 'string', default: '128' } } })
  const rounds = Number(values.rounds)
  const memoryMiB = Number(values['memory-mib'])
  const diskMiB = Number(values['disk-mib'])
  const tag = randomBytes(3).toString('hex')
  const netns = `fedvm-bench-${tag}`
  const cleanups: Array<() => Promise<unknown>> = []
  const work = await mkdtemp(join(tmpdir(), 'fedvm-bench-live-'))
  cleanups.push(async () => await rm(work, { recursive: true, force: true }))
  try {
    cleanups.push(await sharedNamespace(netns))
    const hosts = await Promise.all([`${tag}a`, `${tag}b`].map(async (t) => await LibvirtHost.start({ tag: t, netns })))
    for (const h of hosts) cleanups.unshift(async () => await h.stop())
    const image = await ensureGuestImage()
    const type = await chooseDomainType(image)
    const name = `fedvm-bench-${tag}`

    // The disk holds random data, so the NBD copy moves real bytes.
    const firstDir = join(hosts[0].dir, 'vms', name)
    await mkdir(firstDir, { recursive: true })
    const disk = await open(join(firstDir, `${name}.img`), 'w')
    const buf = Buffer.allocUnsafe(8 * MiB)
    for (let i = 0; i < diskMiB / 8; i++) { randomFillSync(buf); await disk.write(buf) }
    await disk.close()
    const consoleLog = join(firstDir, `${name}.console.log`)
    await writeFile(join(work, 'define.xml'), domainXml({ name, type, image, memoryMiB, disk: join(firstDir, `${name}.img`), consoleLog }).replace("<serial type='file'>\n      <source path=", "<serial type='file'>\n      <source append='on' path="))
    await hosts[0].virsh('define', join(work, 'define.xml'))
    await hosts[0].virsh('start', name)
    await waitGuestReady({ name, uuid: '', disk: '', consoleLog }, 180_000)

    const tlsDir = join(work, 'tls')
    const ids = await Promise.all(['source', 'destination'].map(async (n) => { await mkdir(join(tlsDir, n), { recursive: true }); await writeTlsIdentity(join(tlsDir, n), n); return await readTlsIdentity(join(tlsDir, n)) }))

    const results: Round[] = []
    let at = 0
    for (let i = 0; i < rounds; i++) {
      const mode = i % 4 === 0 || i % 4 === 3 ? 'fedvm' : 'direct'
      const src = hosts[at]
      const dst = hosts[1 - at]
      const dstDir = join(dst.dir, 'vms', name)
      await rm(dstDir, { recursive: true, force: true })
      const probe = new PingProbe(netns)
      cleanups.unshift(async () => await probe.outageMs())
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const started = Date.now()
      let downtime: number | undefined
      let elapsed: number | undefined
      if (mode === 'fedvm') {
        ({ downtime, elapsed } = await relayedLiveMigrate(src, dst, name, dstDir, ids[0], ids[1]))
      } else {
        ({ downtime, elapsed } = await directMigrate(src, dst, name, dstDir))
      }
      const wallMs = Date.now() - started
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const round: Round = { mode, from: at === 0 ? 'A' : 'B', wallMs, libvirtDowntimeMs: downtime, libvirtElapsedMs: elapsed, probeGapMs: await probe.outageMs() }
      results.push(round)
      console.log(JSON.stringify({ ...round, load: Number(loadavg()[0].toFixed(2)) }))
      at = 1 - at
    }
    const summary = (mode: string, key: keyof Round): number | undefined => median(results.filter((r) => r.mode === mode).map((r) => r[key] as number | undefined).filter((v): v is number => v !== undefined))
    const out = {
      memoryMiB, diskMiB, rounds: results,
      median: Object.fromEntries(['fedvm', 'direct'].map((m) => [m, { wallMs: summary(m, 'wallMs'), libvirtDowntimeMs: summary(m, 'libvirtDowntimeMs'), libvirtElapsedMs: summary(m, 'libvirtElapsedMs'), probeGapMs: summary(m, 'probeGapMs') }])),
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      when: new Date().toISOString()
    }
    console.log(JSON.stringify(out.median))
    await mkdir('bench/results', { recursive: true })
    await writeFile('bench/results/migrate-live.json', `${JSON.stringify(out, null, 2)}\n`)
  } finally {
    for (const c of cleanups) await c().catch((err) => console.error(`cleanup: ${(err as Error).message}`))
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
