/**
 * For bench/collect: a bulk-stats reply scaled to N domains from one real record, and a
 * Hypervisor that answers every bulk call by decoding that reply with the real decoder.
 *
 * Run on its own (no root, no libvirtd), it replays the captured fixture's running domain
 * (test/host/fixtures/running-paused-shutoff.xdr, libvirt 9.0) scaled to N domains through the
 * real decoder, parser, collector and the agent's prom-client registry, and prints the agent CPU
 * of one collection (median of the iterations):
 *
 *   node dist/bench/collect-replay.js [--domains 1000] [--iterations 30] [--template fedvm-test-1] [--fixture FILE]
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { registerCollectors } from '../agent/collect'
import { LibvirtCollector } from '../host/libvirt/libvirt-collector'
import { parseDomainStatsReply } from '../host/libvirt/parse-domain-stats'
import type { DomainDetails, DomainRef, DomainStats, Hypervisor } from '../host/hypervisor'
import { scaledReply } from '../test/host/support/stats-reply'

export class ReplayHypervisor implements Hypervisor {
  constructor (private readonly body: Buffer) {}
  async listDomains (): Promise<DomainRef[]> { return (await this.getDomainStats()).map((d, i) => ({ name: d.name, uuid: d.uuid, id: i + 1 })) }
  async getDomainStats (): Promise<DomainStats[]> { return parseDomainStatsReply(this.body) }
  async getDomainDetails (): Promise<DomainDetails> { throw new Error('not replayed') }
  async close (): Promise<void> {}
}

export interface Cost { wallMs: number, cpuMs: number }

export const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Agent CPU (user + sys of this process) and wall time of one scrape of `registry`, medians. */
export async function agentCost (registry: Registry, iterations: number): Promise<Cost> {
  const wall: number[] = []
  const cpu: number[] = []
  await registry.metrics() // warm-up: connection, JIT
  for (let i = 0; i < iterations; i++) {
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    await registry.metrics()
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6)
    const c = process.cpuUsage(c0)
    cpu.push((c.user + c.system) / 1000)
  }
  return { wallMs: median(wall), cpuMs: median(cpu) }
}

/** A registry with the libvirt collector over `body` replayed, as the agent registers it. */
export function replayRegistry (body: Buffer): Registry {
  const registry = new Registry()
  registerCollectors(registry, [new LibvirtCollector({ hypervisor: new ReplayHypervisor(body) })], { deadlineMs: 10_000 })
  return registry
}

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

async function main (): Promise<void> {
  const domains = Number(arg('domains', '1000'))
  const iterations = Number(arg('iterations', '30'))
  const fixture = arg('fixture', join(__dirname, '..', '..', 'test', 'host', 'fixtures', 'running-paused-shutoff.xdr'))
  const body = scaledReply(readFileSync(fixture), arg('template', 'fedvm-test-1'), domains)
  const registry = replayRegistry(body)
  const cost = await agentCost(registry, iterations)
  const text = await registry.metrics()
  const samples = text.split('\n').filter(l => l !== '' && !l.startsWith('#')).length
  console.log(`${domains} domains (replayed, ${(body.length / 1e6).toFixed(1)} MB reply, ${samples} samples, ${text.length} bytes of text): ${cost.cpuMs.toFixed(1)} ms CPU / ${cost.wallMs.toFixed(1)} ms wall, median of ${iterations} (target ≤ 100 ms CPU)`)
}

if (require.main === module) main().catch(err => { console.error(err); process.exit(1) })
