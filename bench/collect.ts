/**
 * bench/collect: agent CPU and wall time of one libvirt collection (bulk stats call + parse +
 * samples + prom-client exposition) with 1, 10 and 50 live domains (1 running TCG VM, the rest
 * started paused), against `virsh domstats --raw` for the same domains in the same run; then one
 * collection of 1,000 domains replayed from a real reply (fixture-scaled) through the real decoder.
 * Targets: 1,000 domains ≤ 100 ms agent CPU; ratio ≤ 1.0 against virsh.
 *
 *   node dist/bench/collect.js [--iterations 20] [--out bench/results/collect.json]
 * Needs root, like the e2e tests (it starts its own libvirtd in a namespace).
 */
import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { Registry } from 'prom-client'
import { registerCollectors } from '../agent/collect'
import { LibvirtCollector } from '../host/libvirt/libvirt-collector'
import { LibvirtHypervisor } from '../host/libvirt/libvirt-hypervisor'
import { ensureGuestImage } from '../test/support/vm/guest-image'
import { chooseDomainType } from '../test/support/vm/kvm-probe'
import { LibvirtHost } from '../test/support/vm/libvirt-host'
import { startTestDomain, waitGuestReady } from '../test/support/vm/test-domain'
import { VIRSH_GROUPS } from '../test/support/vm/capture-stats-fixture'
import { scaledReply } from '../test/host/support/stats-reply'
import { agentCost, median, ReplayHypervisor, type Cost } from './collect-replay'

const run = promisify(execFile)

interface Row { domains: number, agent: Cost, virsh: Cost, cpuRatio: number, wallRatio: number }

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

/** virsh's own CPU (user + sys) as bash's `time` reports it for the child. */
async function virshCost (host: LibvirtHost, iterations: number): Promise<Cost> {
  const wall: number[] = []
  const cpu: number[] = []
  const cmd = `TIMEFORMAT='%3R %3U %3S'; time virsh -r -c '${host.uri}' domstats --raw ${VIRSH_GROUPS.join(' ')} > /dev/null`
  for (let i = 0; i <= iterations; i++) {
    const { stderr } = await run('bash', ['-c', cmd])
    const [r, u, s] = stderr.trim().split('\n').pop()?.split(' ').map(Number) ?? []
    if (i === 0) continue
    wall.push(r * 1000)
    cpu.push((u + s) * 1000)
  }
  return { wallMs: median(wall), cpuMs: median(cpu) }
}

async function main (): Promise<void> {
  const iterations = Number(arg('iterations', '20'))
  const out = arg('out', join(__dirname, '..', '..', 'bench', 'results', 'collect.json'))
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const host = await LibvirtHost.start({ tag: 'bench' })
  const rows: Row[] = []
  let replay: { domains: number, cpuMs: number, wallMs: number, samples: number, bytes: number } | undefined
  try {
    const vm = await startTestDomain(host, { name: 'fedvm-bench-0', image, type })
    await waitGuestReady(vm)
    const hypervisor = new LibvirtHypervisor({ socketPath: host.readOnlySocketPath })
    const registry = new Registry()
    registerCollectors(registry, [new LibvirtCollector({ hypervisor })], { deadlineMs: 10_000 })
    let count = 1
    for (const n of [1, 10, 50]) {
      for (; count < n; count++) {
        await startTestDomain(host, { name: `fedvm-bench-${count}`, image, type, paused: true, memoryMiB: 64 })
      }
      const agent = await agentCost(registry, iterations)
      const virsh = await virshCost(host, iterations)
      rows.push({ domains: n, agent, virsh, cpuRatio: agent.cpuMs / virsh.cpuMs, wallRatio: agent.wallMs / virsh.wallMs })
      console.log(`${n} domains: agent ${agent.cpuMs.toFixed(2)} ms CPU / ${agent.wallMs.toFixed(2)} ms wall; virsh ${virsh.cpuMs.toFixed(1)} ms CPU / ${virsh.wallMs.toFixed(1)} ms wall; ratio CPU ${(agent.cpuMs / virsh.cpuMs).toFixed(3)}, wall ${(agent.wallMs / virsh.wallMs).toFixed(3)}`)
    }
    // 1,000 domains: the running VM's real record, replicated, through the real decoder + exporter.
    const live = await hypervisor.getDomainStatsReply()
    await hypervisor.close()
    const body = scaledReply(live, 'fedvm-bench-0', 1000)
    const replayRegistry = new Registry()
    registerCollectors(replayRegistry, [new LibvirtCollector({ hypervisor: new ReplayHypervisor(body) })], { deadlineMs: 10_000 })
    const cost = await agentCost(replayRegistry, iterations)
    const text = await replayRegistry.metrics()
    replay = { domains: 1000, ...cost, samples: text.split('\n').filter(l => l !== '' && !l.startsWith('#')).length, bytes: body.length }
    console.log(`1000 domains (replayed, ${(body.length / 1e6).toFixed(1)} MB reply, ${replay.samples} samples): ${cost.cpuMs.toFixed(1)} ms CPU / ${cost.wallMs.toFixed(1)} ms wall (target ≤ 100 ms CPU)`)
  } finally {
    await host.stop()
  }
  const result = { date: new Date().toISOString(), iterations, domainType: type, live: rows, replay, node: process.version, libvirt: (await run('libvirtd', ['--version'])).stdout.trim() }
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify(result, null, 2) + '\n')
  console.log(`written ${out}`)
}

main().catch(err => { console.error(err); process.exit(1) })
