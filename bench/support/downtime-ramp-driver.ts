/**
 * fedvm's downtime-limit ramp (host/libvirt/downtime-ramp.ts) driven from outside the migration: its
 * own connection to the Source's libvirtd sets the start limit, then reads the job statistics every
 * 50 ms and raises the limit as DowntimeRamp says, as LiveSource's ramp does on Perform's connection.
 * QEMU sees the same limits either way, so one driver serves a direct `virsh migrate` and fedvm's
 * relayed path alike: the ramped rounds of both paths differ only in the path.
 */
import { rpcTarget } from '../../host/libvirt/guest-clock'
import { DowntimeRamp } from '../../host/libvirt/downtime-ramp'
import { liveProgress } from '../../host/libvirt/live-progress'
import { jobStats, lookupDomain, setMaxDowntime } from '../../host/libvirt/rpc/migration-phases'
import { RpcConnection } from '../../host/libvirt/rpc/rpc-connection'

const POLL_MS = 50

export interface RampTrace {
  /** The limits set, as [ms from the ramp's start, limit ms]. */
  limits: Array<[number, number]>
  /** The highest memory pass the job statistics showed while the ramp ran. */
  maxIterationSeen: number
  /** Failed statistics reads or limit sets (the ramp retries at the next tick, as LiveSource's does). */
  errors: number
  firstError?: string
}

export class ExternalRamp {
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<void> = Promise.resolve()
  private readonly trace: RampTrace = { limits: [], maxIterationSeen: 0, errors: 0 }

  private constructor (private readonly conn: RpcConnection, private readonly ramp: DowntimeRamp, private readonly startedAtMs: number, private current: number, private readonly maxMs: number, private readonly hold: boolean) {}

  /**
   * Sets the start limit on `domain` at the libvirtd `uri` (before or during the migration job) and
   * starts raising it; `fullByMs` from now it is at `maxMs` whatever the statistics say. `hold`: the
   * same calls at the same moments, each setting `maxMs` (a control: the calls without the low limit).
   */
  static async start (uri: string, domain: string, o: { maxMs?: number, fullByMs?: number, hold?: boolean } = {}): Promise<ExternalRamp> {
    const target = rpcTarget(uri)
    const conn = await RpcConnection.open(target.socketPath, target.uri, { timeoutMs: 10_000 })
    try {
      const dom = await lookupDomain(conn, domain)
      const maxMs = o.maxMs ?? 300
      const startedAtMs = Date.now()
      const ramp = new DowntimeRamp({ maxDowntimeMs: maxMs, startedAtMs, fullByMs: o.fullByMs ?? 30_000 })
      const hold = o.hold === true
      await setMaxDowntime(conn, dom, hold ? maxMs : ramp.startLimitMs, { timeoutMs: 5000 })
      const driver = new ExternalRamp(conn, ramp, startedAtMs, ramp.startLimitMs, maxMs, hold)
      driver.trace.limits.push([0, hold ? maxMs : ramp.startLimitMs])
      driver.timer = setInterval(() => { driver.ticking = driver.ticking.then(async () => await driver.tick(dom)) }, POLL_MS)
      return driver
    } catch (err) {
      await conn.close(true)
      throw err
    }
  }

  /** Stops raising the limit (where it is stays) and closes the connection. */
  async stop (): Promise<RampTrace> {
    clearInterval(this.timer)
    await this.ticking
    await this.conn.close().catch(() => {})
    return this.trace
  }

  private async tick (dom: Awaited<ReturnType<typeof lookupDomain>>): Promise<void> {
    try {
      const s = await jobStats(this.conn, dom, 0, { timeoutMs: 5000 })
      const progress = s.type !== 0 ? liveProgress(s.stats) : undefined
      if (progress !== undefined) this.trace.maxIterationSeen = Math.max(this.trace.maxIterationSeen, progress.iteration)
      const now = Date.now()
      const next = this.ramp.limitAt(now, progress)
      if (next !== this.current) {
        await setMaxDowntime(this.conn, dom, this.hold ? this.maxMs : next, { timeoutMs: 5000 })
        this.current = next
        this.trace.limits.push([now - this.startedAtMs, this.hold ? this.maxMs : next])
      }
    } catch (err) {
      // Once the domain has left this libvirtd there is nothing more to ramp or to read.
      if (/Domain not found/.test((err as Error).message)) { clearInterval(this.timer); return }
      this.trace.errors++
      this.trace.firstError ??= (err as Error).message.slice(0, 200)
    }
  }
}
