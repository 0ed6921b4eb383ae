// bench/migrate-live-sites: one running guest moved live between two sites, each a real `fedvm site
// run` process driving its own private libvirtd (`fedvm migrate` from the primary: Migration request,
// Forced migration with Begin, live-prepare, live-perform through the proxies, live-finish, Transfer
// verification, the decision, Confirm and release), alternating with the peer: a direct `virsh
// migrate --live --copy-storage-all` between the same two libvirtds. Rounds go in pairs that bring the
// guest back to site-a: fedvm A → B, fedvm B → A, direct A → B, direct B → A. Downtime two ways:
// libvirt's own figure and the host-clock ping probe (bench/live-peer.ts). The sites' logs say where
// fedvm's time goes (printed per round: each step's share).
// Usage: node dist/bench/migrate-live-sites.js [--rounds 8] [--memory-mib 256] [--disk-mib 128]   (writes bench/results/migrate-live-sites.json)
import { randomBytes, randomFillSync } from 'node:crypto'
import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Federation } from '../test/protocol/support/federation'
import { ensureGuestImage } from '../test/support/vm/guest-image'
import { chooseDomainType } from '../test/support/vm/kvm-probe'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { domainXml, waitGuestReady } from '../test/support/vm/test-domain'
import { directMigrate, median, PingProbe, sharedNamespace } from './live-peer'

const MiB = 1024 * 1024

interface Round { mode: 'fedvm' | 'direct', from: 'A' | 'B', wallMs: number, libvirtDowntimeMs?: number, probeGapMs?: number, steps?: Record<string, number> }

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '8' }, 'memory-mib': { type: 'string', default: '256' }, 'disk-mib': { type: 'string', default: '128' } } })
  const rounds = Number(values.rounds)
  const memoryMiB = Number(values['memory-mib'])
  const diskMiB = Number(values['disk-mib'])
  const tag = randomBytes(3).toString('hex')
  const netns = `fedvm-bench-${tag}`
  const cleanups: Array<() => Promise<unknown>> = []
  try {
    cleanups.push(await sharedNamespace(netns))
    const hosts = await Promise.all([`${tag}a`, `${tag}b`].map(async (t) => await LibvirtHost.start({ tag: t, netns })))
    for (const h of hosts) cleanups.unshift(async () => await h.stop())
    const image = await ensureGuestImage()
    const type = await chooseDomainType(image)
    const fed = await Federation.create([
      { id: 'site-a', ip: '127.0.0.97', partners: ['site-b'] },
      { id: 'site-b', ip: '127.0.0.98', partners: ['site-a'] },
    ])
    cleanups.unshift(async () => await fed.close())
    // Each site's host keeps its VMs where the direct peer puts them too (LIBVIRT_DIR/vms/NAME).
    await fed.reconfigure('site-a', (c) => { c.hosts = [{ id: 'a1', vmDir: join(hosts[0].dir, 'vms'), maxVms: 1, libvirt: { uri: hosts[0].uri } }] })
    await fed.reconfigure('site-b', (c) => { c.hosts = [{ id: 'b1', vmDir: join(hosts[1].dir, 'vms'), maxVms: 1, libvirt: { uri: hosts[1].uri } }] })
    await fed.start()

    // The disk holds random data, so the NBD copy moves real bytes; placed at site-a (cold, from an intake folder).
    const name = `fedvm-bench-${tag}`
    const intake = join(fed.root, 'intake')
    await mkdir(intake, { recursive: true })
    const disk = await open(join(intake, `${name}.img`), 'w')
    const buf = Buffer.allocUnsafe(8 * MiB)
    for (let i = 0; i < diskMiB / 8; i++) { randomFillSync(buf); await disk.write(buf) }
    await disk.close()
    await writeFile(join(intake, 'domain.xml'), domainXml({ name, type, image, memoryMiB, disk: join(intake, `${name}.img`), consoleLog: join(intake, 'console.log') })
      .replace("<serial type='file'>\n      <source path=", "<serial type='file'>\n      <source append='on' path="))
    await writeFile(join(fed.root, 'descriptor.json'), JSON.stringify({ id: name }))
    const placed = await fed.cli('site-a', 'place', '--vm', name, '--dir', intake, '--descriptor', join(fed.root, 'descriptor.json'))
    if (placed.code !== 0) throw new Error(`placement failed: ${placed.raw.stdout}${placed.raw.stderr}`)
    await waitGuestReady({ name, uuid: '', disk: '', consoleLog: join(hosts[0].dir, 'vms', name, 'console.log') }, 180_000)

    const results: Round[] = []
    for (let i = 0; i < rounds; i++) {
      const mode = i % 4 < 2 ? 'fedvm' : 'direct'
      const at = i % 2
      const src = hosts[at]
      const dst = hosts[1 - at]
      await rm(join(dst.dir, 'vms', name), { recursive: true, force: true })
      const probe = new PingProbe(netns)
      cleanups.unshift(async () => await probe.outageMs())
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const started = Date.now()
      const round: Round = { mode, from: at === 0 ? 'A' : 'B', wallMs: 0 }
      if (mode === 'fedvm') {
        const mark = fed.daemon('site-a').events().length
        const marks = { a: mark, b: fed.daemon('site-b').events().length }
        const moved = await fed.cli('site-a', 'migrate', '--vm', name)
        round.wallMs = Date.now() - started
        if (moved.code !== 0 || moved.json?.path !== 'live') throw new Error(`fedvm migrate: ${moved.raw.stdout}${moved.raw.stderr}`)
        round.libvirtDowntimeMs = moved.json.downtimeMs
        round.steps = steps(fed, marks)
      } else {
        ({ downtime: round.libvirtDowntimeMs } = await directMigrate(src, dst, name, join(dst.dir, 'vms', name)))
        round.wallMs = Date.now() - started
      }
      await new Promise((resolve) => setTimeout(resolve, 1500))
      round.probeGapMs = await probe.outageMs()
      results.push(round)
      console.log(JSON.stringify({ ...round, load: Number(loadavg()[0].toFixed(2)) }))
    }
    const summary = (mode: string, key: 'wallMs' | 'libvirtDowntimeMs' | 'probeGapMs'): number | undefined =>
      median(results.filter((r) => r.mode === mode).map((r) => r[key]).filter((v): v is number => v !== undefined))
    const medians = Object.fromEntries(['fedvm', 'direct'].map((m) => [m, { wallMs: summary(m, 'wallMs'), libvirtDowntimeMs: summary(m, 'libvirtDowntimeMs'), probeGapMs: summary(m, 'probeGapMs') }]))
    const ratio = (key: 'wallMs' | 'libvirtDowntimeMs' | 'probeGapMs'): number | undefined => {
      const f = medians.fedvm[key]
      const d = medians.direct[key]
      return f === undefined || d === undefined || d === 0 ? undefined : Number((f / d).toFixed(2))
    }
    const out = {
      memoryMiB, diskMiB, rounds: results, median: medians,
      fedvmToDirect: { wallMs: ratio('wallMs'), libvirtDowntimeMs: ratio('libvirtDowntimeMs'), probeGapMs: ratio('probeGapMs') },
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      when: new Date().toISOString(),
    }
    console.log(JSON.stringify({ median: out.median, fedvmToDirect: out.fedvmToDirect }))
    await mkdir('bench/results', { recursive: true })
    await writeFile('bench/results/migrate-live-sites.json', `${JSON.stringify(out, null, 2)}\n`)
  } finally {
    for (const c of cleanups) await c().catch((err) => console.error(`cleanup: ${(err as Error).message}`))
  }
}

/** Where fedvm's time went in the round: each step from the sites' logs (ms). */
function steps (fed: Federation, marks: { a: number, b: number }): Record<string, number> {
  const events = [...fed.daemon('site-a').events().slice(marks.a), ...fed.daemon('site-b').events().slice(marks.b)]
  const at = (event: string): number | undefined => {
    const e = events.find((x) => x.event === event)
    return e === undefined ? undefined : Date.parse(String(e.ts))
  }
  const ms = (event: string): number | undefined => events.find((x) => x.event === event)?.ms as number | undefined
  const begun = at('migration-begun')
  const out: Record<string, number | undefined> = {
    offersAndBegin: begun !== undefined && at('migration-request') !== undefined ? begun - at('migration-request')! : undefined,
    begin: ms('prepared-for-leaving'),
    prepare: ms('live-prepared'),
    perform: ms('live-performed'),
    finish: ms('live-finished'),
    decidedToReleased: at('transfer-released') !== undefined && at('migration-decided') !== undefined ? at('transfer-released')! - at('migration-decided')! : undefined,
    sourceConfirm: events.find((x) => x.event === 'transfer-released')?.confirmMs as number | undefined,
    sourceRelease: events.find((x) => x.event === 'transfer-released')?.releaseMs as number | undefined,
  }
  return Object.fromEntries(Object.entries(out).filter((e): e is [string, number] => e[1] !== undefined))
}

main().catch((err) => { console.error(err); process.exit(1) })
