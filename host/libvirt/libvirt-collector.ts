/**
 * The libvirt Collector: one bulk statistics call per collection, turned into libvirt_domain_*
 * samples, plus libvirt_up.
 *
 * One stuck domain must not stall the others. libvirt's bulk call walks the domains in turn and
 * waits, without a time limit, for each domain's QEMU monitor; so the call gets a deadline
 * (`statsTimeoutMs`). When it is missed, the domains whose control channel is busy
 * (virDomainGetControlInfo: occupied, job or error) are the suspects: they are marked stuck,
 * reported as libvirt_domain_timed_out 1 with no other series, and left out of later bulk calls
 * until their control channel is `ok` again. The others are read again in the same collection.
 *
 * Inactive (defined, shut off) domains export only libvirt_domain_info_state, so stopping a
 * domain removes its usage series and a domain that is undefined disappears entirely.
 */
import { setMaxListeners } from 'node:events'
import type { Collector, Sample } from '../collector'
import { HypervisorError } from '../errors'
import type { DomainRef, DomainStats, Hypervisor } from '../hypervisor'
import { domainSamples, F, LIBVIRT_FAMILIES } from './domain-samples'

export interface LibvirtCollectorOptions {
  hypervisor: Hypervisor
  /**
   * Deadline of one bulk statistics call, ms. Default 4000; keep it below the core's deadline.
   * libvirt asks each QEMU in turn: 50 domains on a loaded 2-core TCG host took ~1.8 s.
   */
  statsTimeoutMs?: number
  log?: (message: string) => void
}

const SHUTOFF = 5

export class LibvirtCollector implements Collector {
  readonly name = 'libvirt'
  readonly families = LIBVIRT_FAMILIES
  private readonly hypervisor: Hypervisor
  private readonly statsTimeoutMs: number
  private readonly log: (message: string) => void
  /** Domains that missed a deadline, by uuid; left out of bulk calls until they recover. */
  private readonly stuck = new Map<string, DomainRef>()

  constructor (options: LibvirtCollectorOptions) {
    this.hypervisor = options.hypervisor
    this.statsTimeoutMs = options.statsTimeoutMs ?? 4000
    this.log = options.log ?? (() => {})
  }

  async collect (signal: AbortSignal): Promise<Sample[]> {
    let stats: DomainStats[]
    try {
      stats = await this.read(signal)
    } catch (err) {
      if (signal.aborted) throw err
      this.log(`libvirt collection failed: ${(err as Error).message}`)
      return [sample(F.up, {}, 0)]
    }
    const out: Sample[] = [sample(F.up, {}, 1)]
    for (const d of stats) {
      if (d.state.code === SHUTOFF) out.push(sample(F.state, { domain: d.name, uuid: d.uuid }, d.state.code))
      else domainSamples(d, out)
    }
    for (const d of this.stuck.values()) out.push(sample(F.timedOut, { domain: d.name, uuid: d.uuid }, 1))
    return out
  }

  private async read (signal: AbortSignal): Promise<DomainStats[]> {
    if (this.stuck.size > 0) await this.recheckStuck(signal)
    try {
      return await this.bulk(signal)
    } catch (err) {
      if (signal.aborted || !(err instanceof HypervisorError) || err.code !== 'TIMEOUT') throw err
      const found = await this.findStuck(signal)
      if (found === 0) throw new HypervisorError('TIMEOUT', `libvirt bulk statistics took over ${this.statsTimeoutMs} ms and no domain's monitor is busy`, { cause: err })
      return await this.bulk(signal)
    }
  }

  /** One bulk call, bounded by statsTimeoutMs, over every domain not known to be stuck. */
  private async bulk (signal: AbortSignal): Promise<DomainStats[]> {
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      if (this.stuck.size === 0) return await this.hypervisor.getDomainStats({ signal: bounded.signal })
      const domains = (await this.hypervisor.listDomains(bounded.signal)).filter(d => !this.stuck.has(d.uuid))
      if (domains.length === 0) return []
      return await this.hypervisor.getDomainStats({ domains, signal: bounded.signal })
    } catch (err) {
      throw bounded.timedOut() ? new HypervisorError('TIMEOUT', `libvirt bulk statistics did not answer within ${this.statsTimeoutMs} ms`, { cause: err }) : err
    } finally {
      bounded.dispose()
    }
  }

  /** After a missed deadline: the active domains whose control channel is not `ok` are stuck. */
  private async findStuck (signal: AbortSignal): Promise<number> {
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      const active = (await this.hypervisor.listDomains(bounded.signal)).filter(d => d.id >= 0 && !this.stuck.has(d.uuid))
      const details = await Promise.allSettled(active.map(d => this.hypervisor.getDomainDetails(d.uuid, bounded.signal)))
      let found = 0
      details.forEach((r, i) => {
        // A domain libvirt is querying right now is busy for a few ms only; the stuck one for about our deadline.
        if (r.status === 'fulfilled' && (r.value.control.state === 'ok' || r.value.control.sinceMs < this.statsTimeoutMs / 2)) return
        if (r.status === 'rejected' && (r.reason as HypervisorError).code === 'DOMAIN_NOT_FOUND') return
        this.stuck.set(active[i].uuid, active[i])
        this.log(`libvirt domain ${active[i].name} (${active[i].uuid}) is stuck: ${r.status === 'fulfilled' ? `control ${r.value.control.state} for ${r.value.control.sinceMs} ms` : (r.reason as Error).message}`)
        found++
      })
      return found
    } finally {
      bounded.dispose()
    }
  }

  /** A stuck domain comes back once its control channel is `ok`; a vanished one is forgotten. */
  private async recheckStuck (signal: AbortSignal): Promise<void> {
    const bounded = withTimeout(signal, this.statsTimeoutMs)
    try {
      await Promise.all([...this.stuck.values()].map(async d => {
        try {
          const details = await this.hypervisor.getDomainDetails(d.uuid, bounded.signal)
          if (details.control.state === 'ok' || details.id < 0) this.stuck.delete(d.uuid)
        } catch (err) {
          if (err instanceof HypervisorError && err.code === 'DOMAIN_NOT_FOUND') this.stuck.delete(d.uuid)
        }
      }))
    } finally {
      bounded.dispose()
    }
  }
}

function sample (f: { name: string, help: string, type: 'counter' | 'gauge' }, labels: Record<string, string>, value: number): Sample {
  return { name: f.name, help: f.help, type: f.type, labels, value }
}

/** The caller's signal plus our own deadline; `timedOut()` tells which one fired. */
function withTimeout (signal: AbortSignal, ms: number): { signal: AbortSignal, timedOut: () => boolean, dispose: () => void } {
  const own = new AbortController()
  const combined = AbortSignal.any([signal, own.signal])
  // One listener per call in flight (e.g. a details call per domain): not a leak.
  setMaxListeners(0, combined)
  const timer = setTimeout(() => own.abort(new HypervisorError('TIMEOUT', `deadline of ${ms} ms`)), ms)
  return {
    signal: combined,
    timedOut: () => own.signal.aborted && !signal.aborted,
    dispose: () => clearTimeout(timer)
  }
}
