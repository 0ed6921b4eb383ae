/**
 * The Destination's half of a live migration: Prepare and Finish on the Destination's own
 * libvirtd, over one connection kept from Prepare to Finish (libvirt kills the incoming domain
 * when it closes first). The disks are created empty in the VM's folder here, and every path of the
 * Source's XML is moved into it.
 */
import { mkdir } from 'node:fs/promises'
import { rpcTarget } from './guest-clock'
import { createDisks } from './live-disks'
import { liveParams, localSocketPath, type LiveChannel } from './live-params'
import { rewriteSourcePaths } from './lifecycle-xml'
import { neutraliseCookie } from './migration-cookie'
import { MigrateParam, type TypedParams } from './rpc/migration-params'
import { blockCapacity, destinationFlags, finishMigration, JOB_STATS_COMPLETED, JOB_STATS_KEEP_COMPLETED, jobStats, LIVE_COPY_ALL, prepareMigration } from './rpc/migration-phases'
import type { LiveStatus } from './live-status'
import type { DomainRef } from '../hypervisor'
import { join } from 'node:path'
import { RpcConnection } from './rpc/rpc-connection'
import type { LiveOffer } from './live-source'

export class LiveDestination {
  private constructor (
    private readonly conn: RpcConnection,
    private readonly uri: string,
    private readonly id: string,
    private readonly params: TypedParams,
    private readonly dir: string,
    private readonly disks: LiveOffer['disks'],
    /** Prepare's neutralised cookie, for the Source's Perform. */
    readonly cookie: Buffer
  ) {}

  static async prepare (o: { uri: string, id: string, domain: string, dir: string, offer: LiveOffer, callTimeoutMs?: number }): Promise<LiveDestination> {
    await mkdir(o.dir, { recursive: true })
    await createDisks(o.offer.disks, o.dir)
    const target = rpcTarget(o.uri)
    const conn = await RpcConnection.open(target.socketPath, target.uri, { timeoutMs: o.callTimeoutMs ?? 60_000 })
    try {
      const params = liveParams(o.id, o.domain)
      const xml = rewriteSourcePaths(o.offer.xml, o.dir)
      const prepared = await prepareMigration(conn, { ...params, [MigrateParam.DEST_XML]: xml }, o.offer.cookie, destinationFlags(LIVE_COPY_ALL))
      return new LiveDestination(conn, o.uri, o.id, params, o.dir, o.offer.disks, neutraliseCookie(prepared.cookie))
    } catch (err) {
      await conn.close(true)
      throw err
    }
  }

  /** Where this process reaches the Destination QEMU's socket of `channel` (the stream relay connects there). */
  socketPath (channel: LiveChannel): string {
    return localSocketPath(this.uri, this.id, channel)
  }

  /**
   * Finish: after a successful Perform the domain resumes here and is made persistent; with
   * `cancelled` (Perform failed) the incoming domain is killed and nothing is returned.
   */
  async finish (performCookie: Buffer, cancelled: boolean): Promise<{ uuid: string, cookie: Buffer } | undefined> {
    if (cancelled) {
      await finishMigration(this.conn, this.params, performCookie, destinationFlags(LIVE_COPY_ALL), true).catch(() => {})
      return undefined
    }
    const done = await finishMigration(this.conn, this.params, performCookie, destinationFlags(LIVE_COPY_ALL), false)
    this.arrived = done.dom
    return { uuid: done.dom.uuid, cookie: neutraliseCookie(done.cookie) }
  }

  private arrived: DomainRef | undefined

  /** dstat: what this side's libvirtd says arrived (see live-status.ts); incomplete before a successful Finish. */
  async status (): Promise<LiveStatus> {
    if (this.arrived === undefined) return { uuid: '', disks: [], job: 'incomplete' }
    const dom = this.arrived
    const disks = []
    for (const disk of this.disks) disks.push({ name: disk.name, bytes: await blockCapacity(this.conn, dom, join(this.dir, disk.name)) })
    const job = await jobStats(this.conn, dom, JOB_STATS_COMPLETED | JOB_STATS_KEEP_COMPLETED).then((s) => s.type, () => 0)
    // virDomainJobType 3: VIR_DOMAIN_JOB_COMPLETED.
    return { uuid: dom.uuid, disks, job: job === 3 ? 'completed' : 'incomplete' }
  }

  async close (): Promise<void> {
    await this.conn.close()
  }
}
