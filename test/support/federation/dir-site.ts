/**
 * One site of a test federation whose hosts are plain directories of VM files, running inside the
 * site's own network namespace (`fedvm site run` through nsenter): keys from `fedvm keygen`, its
 * config, state and every log (site.log) in the site's folder. `stop()` stops the daemon by PID.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type CliResult } from '../../protocol/support/fedvm-process'
import { NetnsDaemon, runFedvmIn } from './netns-fedvm'
import { INGEST_PORT, PROXY_PORT, SITE_PORT, type SiteKeys } from './vm-site'

export interface NetnsAddress { name: string, address: string }

export class DirSite {
  daemon?: NetnsDaemon
  config: Record<string, any> = {}

  private constructor (
    readonly id: string,
    readonly hosts: Array<{ id: string, maxVms: number }>,
    readonly net: NetnsAddress,
    readonly dir: string,
    readonly keys: SiteKeys,
  ) {}

  static async create (o: { id: string, hosts: Array<{ id: string, maxVms: number }>, net: NetnsAddress, dir: string }): Promise<DirSite> {
    await mkdir(o.dir, { recursive: true })
    const keygen = await runFedvmIn(o.net.name, ['keygen', '--site', o.id, '--out', join(o.dir, 'keys')])
    if (keygen.code !== 0) throw new Error(`fedvm keygen failed: ${keygen.stderr}`)
    return new DirSite(o.id, o.hosts, o.net, o.dir, keygen.json as SiteKeys)
  }

  get configFile (): string { return join(this.dir, 'site.json') }
  get url (): string { return `https://${this.net.address}:${SITE_PORT}` }
  get ingestListen (): string { return `${this.net.address}:${INGEST_PORT}` }
  get ingestUrl (): string { return `http://${this.ingestListen}/v1/deliveries` }

  /** Where a host keeps its VMs: `vmDir/ID/`. */
  vmDir (hostId: string): string {
    return join(this.dir, 'hosts', hostId)
  }

  /** The site config: its directory hosts, one proxy, the given partners; `extra` is merged in. */
  async writeConfig (partners: DirSite[], extra: Record<string, unknown> = {}): Promise<void> {
    this.config = {
      id: this.id,
      listen: `${this.net.address}:${SITE_PORT}`,
      keys: 'keys',
      partners: partners.map((p) => ({ id: p.id, url: p.url, publicKey: p.keys.publicKey, tlsFingerprint: p.keys.tlsFingerprint })),
      policy: { delegate: true, expose: 'all' },
      hosts: this.hosts.map((h) => ({ id: h.id, vmDir: this.vmDir(h.id), maxVms: h.maxVms })),
      proxies: [{ listen: `${this.net.address}:${PROXY_PORT}` }],
      stateDir: 'state',
      ...extra,
    }
    await writeFile(this.configFile, JSON.stringify(this.config, null, 2))
  }

  async startDaemon (): Promise<NetnsDaemon> {
    const daemon = new NetnsDaemon(this.net.name, ['site', 'run', '--config', this.configFile], join(this.dir, 'site.log'))
    this.daemon = daemon
    await daemon.waitForOutput(/"event":"listening"/, 30_000)
    return daemon
  }

  /** `fedvm site SUB --config SITE ARGS` (or `fedvm migrate …`) in the site's namespace. */
  async cli (sub: string, ...args: string[]): Promise<CliResult> {
    const command = sub === 'migrate' ? ['migrate'] : ['site', sub]
    return await runFedvmIn(this.net.name, [...command, '--config', this.configFile, ...args])
  }

  /** The VMs this site lists (`fedvm site status`): id → where. */
  async locations (): Promise<Map<string, { kind: string, target: string, upstream: string | null }>> {
    const status = await this.cli('status')
    if (status.code !== 0) throw new Error(`fedvm site status at ${this.id} failed: ${status.stderr}`)
    return new Map((status.json as { locations: Array<{ vmId: string, kind: string, target: string, upstream: string | null }> }).locations.map((l) => [l.vmId, l]))
  }

  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.daemon?.stop(signal)
  }
}
