/**
 * The Source's half of a live migration: Begin, Perform and Confirm on the Source's own libvirtd,
 * over one connection kept for the whole migration (libvirt cleans up the job when it closes).
 * What leaves this side is the domain's migratable XML, the disks' names, formats and sizes, and
 * cookies whose host name and host UUID are neutralised.
 */
import type { DomainRef } from '../hypervisor'
import { HypervisorError } from '../errors'
import { rpcTarget } from './guest-clock'
import { DowntimeRamp, rampAllowedFor } from './downtime-ramp'
import { liveDisks, type LiveDisk } from './live-disks'
import { liveProgress, type LiveProgress } from './live-progress'
import { liveParams, localSocketPath, type LiveChannel } from './live-params'
import { performCompleted, type LiveStatus } from './live-status'
import { rewriteSourcePaths } from './lifecycle-xml'
import { neutraliseCookie } from './migration-cookie'
import type { TypedParams } from './rpc/migration-params'
import {
  abortJob, beginMigration, blockCapacity, confirmMigration, JOB_STATS_COMPLETED, JOB_STATS_KEEP_COMPLETED, jobStats, LIVE_COPY_ALL, lookupDomain,
  performMigration, setMaxDowntime
} from './rpc/migration-phases'
import { RpcConnection } from './rpc/rpc-connection'
import { writeDomain } from './rpc/remote-types'
import { XdrWriter } from './rpc/xdr'

export const DEFAULT_MAX_DOWNTIME_MS = 300
/** Where the offered XML's paths point: the Source's own folders never leave it (the Destination moves every path into its VM folder). */
const NEUTRAL_DIR = '/fedvm-vm'
/** Like Nova's default: 800 s per GiB of memory and disk before a migration that does not converge is aborted. */
export const COMPLETION_MS_PER_GIB = 800_000
/**
 * The downtime limit at which QEMU switches a TCG guest over after its first memory pass even on a
 * loaded host: with 300 ms, 9 of 45 starved guests arrived corrupt (26 took 4 to 6 passes), with
 * 2000 ms none of 45 (4 took 4 passes; bench/reset-starved.ts, modes relayed and relayed-2s, under a
 * 30 % CPU quota; Fisher p = 0.0025).
 */
export const TCG_SAFE_DOWNTIME_MS = 2000
/** How often Perform reads libvirt's job statistics while the downtime limit ramps up. */
const RAMP_POLL_MS = 50

export interface LiveOffer {
  /** The domain's migratable XML (its paths are the Destination's to rewrite). */
  xml: string
  cookie: Buffer
  disks: Array<Pick<LiveDisk, 'name' | 'format' | 'bytes'>>
  memoryBytes: number
}

export interface BeginOptions {
  uri: string
  domain: string
  id: string
  /** QEMU's downtime limit for the switchover (default DEFAULT_MAX_DOWNTIME_MS). */
  maxDowntimeMs?: number
  bandwidthMiBs?: number
  /** Default: COMPLETION_MS_PER_GIB per GiB of memory and disks. */
  completionTimeoutMs?: number
  /**
   * Perform ramps the downtime limit up to the maximum (downtime-ramp.ts); otherwise QEMU has the
   * maximum from the start. Off by default, and a TCG domain never ramps (`rampAllowedFor`: more
   * memory passes corrupt TCG guests); `log` says so once for the migration.
   */
  downtimeRamp?: boolean
  /** Which domains may ramp (default `rampAllowedFor`: KVM ones); a test stands in for a KVM host with it. */
  rampAllowed?: (domainXml: string) => boolean
  log?: (message: string) => void
  callTimeoutMs?: number
}

export interface PerformOptions {
  /** Default: the one given to begin, else COMPLETION_MS_PER_GIB per GiB of memory and disks. */
  completionTimeoutMs?: number
  onProgress?: (p: LiveProgress) => void
  progressEveryMs?: number
}

export class LiveSource {
  private constructor (
    private readonly conn: RpcConnection,
    private readonly uri: string,
    private readonly id: string,
    readonly dom: DomainRef,
    private readonly params: TypedParams,
    readonly offer: LiveOffer,
    private readonly completionTimeoutMs: number | undefined,
    private readonly maxDowntimeMs: number,
    private readonly downtimeRamp: boolean
  ) {}

  static async begin (o: BeginOptions): Promise<LiveSource> {
    const target = rpcTarget(o.uri)
    const conn = await RpcConnection.open(target.socketPath, target.uri, { timeoutMs: o.callTimeoutMs ?? 60_000 })
    try {
      const dom = await lookupDomain(conn, o.domain)
      const params = liveParams(o.id, o.domain, { bandwidthMiBs: o.bandwidthMiBs })
      const begun = await beginMigration(conn, dom, params, LIVE_COPY_ALL)
      const disks = []
      for (const disk of liveDisks(begun.xml)) disks.push({ name: disk.name, format: disk.format, bytes: await blockCapacity(conn, dom, disk.path) })
      const maxDowntimeMs = o.maxDowntimeMs ?? DEFAULT_MAX_DOWNTIME_MS
      await setMaxDowntime(conn, dom, maxDowntimeMs)
      const memoryKiB = Number(/<memory\b[^>]*>(\d+)<\/memory>/.exec(begun.xml)?.[1] ?? 0)
      const underKvm = rampAllowedFor(begun.xml)
      const ramps = (o.downtimeRamp ?? false) && (o.rampAllowed?.(begun.xml) ?? underKvm)
      if (o.downtimeRamp === true && !ramps) o.log?.(`downtimeRamp is set, but ${o.domain} runs under TCG, not KVM: no ramp (extra memory passes corrupt TCG guests)`)
      if (!underKvm && maxDowntimeMs < TCG_SAFE_DOWNTIME_MS) o.log?.(`${o.domain} runs under TCG with maxDowntimeMs ${maxDowntimeMs}: on a loaded host QEMU may need more memory passes, after which a TCG guest may arrive corrupt; ${TCG_SAFE_DOWNTIME_MS} ms lets it switch over after its first pass`)
      return new LiveSource(conn, o.uri, o.id, dom, params, { xml: rewriteSourcePaths(begun.xml, NEUTRAL_DIR), cookie: neutraliseCookie(begun.cookie), disks, memoryBytes: memoryKiB * 1024 }, o.completionTimeoutMs, maxDowntimeMs, ramps)
    } catch (err) {
      await conn.close(true)
      throw err
    }
  }

  /** Where this process listens for the Source QEMU's connections of `channel` (the stream relay). */
  socketPath (channel: LiveChannel): string {
    return localSocketPath(this.uri, this.id, channel)
  }

  get defaultCompletionTimeoutMs (): number {
    const bytes = this.offer.memoryBytes + this.offer.disks.reduce((s, d) => s + d.bytes, 0)
    return Math.max(60_000, Math.ceil(bytes / 2 ** 30 * COMPLETION_MS_PER_GIB))
  }

  /**
   * Perform: the disks and the memory move while the guest runs, then it pauses for the switchover.
   * A migration that has not completed within the timeout is aborted: the guest keeps running here.
   * Resolves with the (neutralised) cookie for the Destination's Finish.
   */
  async perform (destinationCookie: Buffer, o: PerformOptions = {}): Promise<Buffer> {
    const timeoutMs = o.completionTimeoutMs ?? this.completionTimeoutMs ?? this.defaultCompletionTimeoutMs
    let timedOut = false
    const abort = setTimeout(() => {
      timedOut = true
      abortJob(this.conn, this.dom).catch(() => {})
    }, timeoutMs)
    const poll = o.onProgress === undefined
      ? undefined
      : setInterval(() => {
        jobStats(this.conn, this.dom, 0, { timeoutMs: 5000 }).then((s) => { if (s.type !== 0) o.onProgress?.(liveProgress(s.stats, false, this.offer.memoryBytes)) }, () => {})
      }, o.progressEveryMs ?? 1000)
    const ramp = this.downtimeRamp ? await this.startRamp(timeoutMs) : undefined
    try {
      const cookie = await performMigration(this.conn, this.dom, this.params, destinationCookie, LIVE_COPY_ALL, { timeoutMs: timeoutMs + 60_000 })
      return neutraliseCookie(cookie)
    } catch (err) {
      if (timedOut) throw new HypervisorError('TIMEOUT', `the live migration did not complete within ${timeoutMs} ms and was aborted`, { cause: err })
      throw err
    } finally {
      clearTimeout(abort)
      if (poll !== undefined) clearInterval(poll)
      ramp?.stop()
    }
  }

  /**
   * The downtime limit starts small and rises to the maximum while Perform runs (see downtime-ramp.ts),
   * driven by libvirt's job statistics on this connection. It is at the maximum by half the completion
   * timeout at the latest, so the ramp cannot make a migration that converges at the maximum time out.
   * A failed read or set is retried at the next tick; if the start limit cannot be set, the maximum
   * (set by begin) stays.
   */
  private async startRamp (timeoutMs: number): Promise<{ stop: () => void }> {
    const ramp = new DowntimeRamp({ maxDowntimeMs: this.maxDowntimeMs, startedAtMs: Date.now(), fullByMs: timeoutMs / 2 })
    let current = ramp.startLimitMs
    try {
      await setMaxDowntime(this.conn, this.dom, current, { timeoutMs: 5000 })
    } catch {
      return { stop: () => {} }
    }
    let busy = false
    const tick = async (): Promise<void> => {
      const s = await jobStats(this.conn, this.dom, 0, { timeoutMs: 5000 })
      const next = ramp.limitAt(Date.now(), s.type !== 0 ? liveProgress(s.stats) : undefined)
      if (next !== current) {
        await setMaxDowntime(this.conn, this.dom, next, { timeoutMs: 5000 })
        current = next
      }
      if (current >= this.maxDowntimeMs) clearInterval(timer)
    }
    const timer = setInterval(() => {
      if (busy) return
      busy = true
      tick().catch(() => {}).finally(() => { busy = false })
    }, RAMP_POLL_MS)
    return { stop: () => clearInterval(timer) }
  }

  /**
   * Confirm: `cancelled` false only after the Destination's Finish succeeded (the domain is then
   * removed here); true otherwise, and the guest resumes here.
   */
  async confirm (finishCookie: Buffer, cancelled: boolean): Promise<void> {
    await confirmMigration(this.conn, this.dom, this.params, finishCookie, LIVE_COPY_ALL, cancelled)
  }

  /** sstat: what this side says moved (see live-status.ts), from Perform's cookie. */
  status (performCookie: Buffer): LiveStatus {
    return { uuid: this.dom.uuid, disks: this.offer.disks.map(({ name, bytes }) => ({ name, bytes })), job: performCompleted(performCookie) ? 'completed' : 'incomplete' }
  }

  /** libvirt's statistics of the completed migration (downtime, elapsed, bytes), while the connection is open. */
  async completed (): Promise<TypedParams | undefined> {
    return await jobStats(this.conn, this.dom, JOB_STATS_COMPLETED | JOB_STATS_KEEP_COMPLETED).then((s) => s.stats, () => undefined)
  }

  async close (): Promise<void> {
    await this.conn.close()
  }
}

const DOMAIN_RESUME = 28
const DOMAIN_GET_STATE = 212
const STATE_PAUSED = 3

/**
 * The Source's recovery when the process that ran Perform died before Confirm and the Destination
 * did not Finish (its in-doubt side cancelled): libvirt lets the job run to its end and leaves the
 * domain paused here; the VM resumes here. Waits up to `timeoutMs` for libvirt's job to end.
 * Answers whether the domain runs here afterwards.
 */
export async function resumeAtSource (o: { uri: string, domain: string, timeoutMs?: number }): Promise<boolean> {
  const target = rpcTarget(o.uri)
  const conn = await RpcConnection.open(target.socketPath, target.uri, { timeoutMs: 30_000 })
  try {
    const dom = await lookupDomain(conn, o.domain)
    const until = Date.now() + (o.timeoutMs ?? 120_000)
    while ((await jobStats(conn, dom)).type !== 0) {
      if (Date.now() > until) throw new HypervisorError('TIMEOUT', `the migration job of ${o.domain} did not end within ${o.timeoutMs ?? 120_000} ms`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    const state = (): Promise<number> => conn.call(DOMAIN_GET_STATE, writeDomain(new XdrWriter(), dom).uint(0).toBuffer()).then((b) => b.readInt32BE(0))
    if (await state() === STATE_PAUSED) await conn.call(DOMAIN_RESUME, writeDomain(new XdrWriter(), dom).toBuffer())
    return await state() === 1
  } finally {
    await conn.close()
  }
}
