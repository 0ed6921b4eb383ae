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
import type { DomainDetails, DomainRef, DomainStats, Hypervisor, StatsRequest } from '../host/hypervisor'
import { decodeListAllDomains, uuidToBytes } from '../host/libvirt/rpc/remote-types'
import { XdrWriter } from '../host/libvirt/rpc/xdr'
import { rawRecords, scaledReply, statsReply, type RawRecord } from '../test/host/support/stats-reply'

/**
 * Answers like libvirtd would, with the real decoders: the domain list as a CONNECT_LIST_ALL_DOMAINS
 * reply body, and each bulk call as a reply body holding just the domains asked for (written once
 * per distinct request, then decoded on every call).
 */
export class ReplayHypervisor implements Hypervisor {
  private readonly records: RawRecord[]
  private readonly listReply: Buffer
  private readonly replies = new Map<string, Buffer>()

  constructor (private readonly body: Buffer) {
    this.records = rawRecords(body)
    const w = new XdrWriter().uint(this.records.length)
    this.records.forEach((r, i) => w.string(r.name).fixedOpaque(uuidToBytes(r.uuid)).int(i + 1))
    this.listReply = w.uint(this.records.length).toBuffer()
  }

  async listDomains (): Promise<DomainRef[]> { return decodeListAllDomains(this.listReply) }

  async getDomainStats (request: StatsRequest = {}): Promise<DomainStats[]> {
    if (request.domains === undefined) return parseDomainStatsReply(this.body)
    const key = request.domains.map(d => d.uuid).join()
    let reply = this.replies.get(key)
    if (reply === undefined) {
      const wanted = new Set(request.domains.map(d => d.uuid))
      reply = statsReply(this.records.filter(r => wanted.has(r.uuid)))
      this.replies.set(key, reply)
    }
    return parseDomainStatsReply(reply)
  }

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
