/**
 * One site of a test federation backed by a real hypervisor, all inside the site's own network
 * namespace: a private libvirtd (LibvirtHost joining the namespace), `fedvm site run` with one
 * host naming that libvirt connection, and `fedvm agent run` for that host. Keys come from
 * `fedvm keygen`; the site's folder holds its config, keys, state, VM directory and every log
 * (site.log, agent.log), so a test can grep all a site ever wrote.
 *
 * `stop()` stops the agent and the daemon by PID and the libvirt host (domains, daemons, folder).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LibvirtHost } from '../vm/libvirt-host'
import { type CliResult } from '../../protocol/support/fedvm-process'
import { NetnsDaemon, runFedvmIn } from './netns-fedvm'
import type { SiteNetns } from './site-network'
import { liveTestLimits } from '../vm/tcg-live-downtime'

export interface SiteKeys { id: string, publicKey: string, tlsFingerprint: string, sealPublicKey: string }

export const SITE_PORT = 7443
export const PROXY_PORT = 7444
export const INGEST_PORT = 7470

export class VmSite {
  daemon?: NetnsDaemon
  agent?: NetnsDaemon
  config: Record<string, any> = {}
  private stopped = false

  private constructor (
    readonly id: string,
    readonly hostId: string,
    readonly net: SiteNetns,
    readonly dir: string,
    readonly keys: SiteKeys,
    readonly libvirt: LibvirtHost,
  ) {}

  /** Keys and a running libvirtd in the site's namespace; the site itself starts with startDaemon(). */
  static async create (o: { id: string, hostId: string, net: SiteNetns, dir: string, tag: string }): Promise<VmSite> {
    await mkdir(o.dir, { recursive: true })
    const keygen = await runFedvmIn(o.net.name, ['keygen', '--site', o.id, '--out', join(o.dir, 'keys')])
    if (keygen.code !== 0) throw new Error(`fedvm keygen failed: ${keygen.stderr}`)
    const libvirt = await LibvirtHost.start({ tag: o.tag, netns: o.net.name })
    return new VmSite(o.id, o.hostId, o.net, o.dir, keygen.json as SiteKeys, libvirt)
  }

  get configFile (): string { return join(this.dir, 'site.json') }
  get url (): string { return `https://${this.net.address}:${SITE_PORT}` }
  get ingestUrl (): string { return `http://${this.net.address}:${INGEST_PORT}/v1/deliveries` }
  /** Where the site's one host keeps its VMs: `vmDir/ID/`. */
  get vmDir (): string { return join(this.dir, 'hosts', this.hostId) }

  /** The site config: one libvirt-backed host, one proxy, the local monitoring ingest, the given partners; `extra` is merged in. */
  async writeConfig (partners: VmSite[], extra: Record<string, unknown> = {}): Promise<void> {
    this.config = {
      id: this.id,
      listen: `${this.net.address}:${SITE_PORT}`,
      keys: 'keys',
      partners: partners.map((p) => ({ id: p.id, url: p.url, publicKey: p.keys.publicKey, tlsFingerprint: p.keys.tlsFingerprint })),
      policy: { delegate: true, expose: 'all' },
      // The VM image's domain runs under TCG (packaging/vm-image/domain.xml.in).
      hosts: [{ id: this.hostId, vmDir: this.vmDir, maxVms: 2, libvirt: { uri: this.libvirt.uri, ...liveTestLimits('qemu') } }],
      proxies: [{ listen: `${this.net.address}:${PROXY_PORT}` }],
      stateDir: 'state',
      // The agents of these tests post unsigned (no host keys).
      monitoring: { ingest: `${this.net.address}:${INGEST_PORT}`, ingestAuth: 'none' },
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

  /**
   * The agent of the site's host: it discovers the VMs in the host's VM directory whose domain runs
   * (no per-VM config) and posts to the site's ingest, plus `extraConsumers`.
   */
  async startAgent (extraConsumers: Array<Record<string, unknown>> = []): Promise<NetnsDaemon> {
    const file = join(this.dir, 'agent.json')
    await writeFile(file, JSON.stringify({
      listen: '127.0.0.1:9464',
      stateDir: join(this.dir, 'agent-state'),
      hypervisor: { type: 'libvirt', socket: this.libvirt.readOnlySocketPath },
      discover: { vmDir: this.vmDir, intervalMs: 1000 },
      consumers: [{ type: 'http', name: 'site', url: this.ingestUrl }, ...extraConsumers],
    }, null, 2))
    const agent = new NetnsDaemon(this.net.name, ['agent', 'run', '--config', file], join(this.dir, 'agent.log'))
    this.agent = agent
    await agent.waitForOutput(/agent: serving \/metrics/, 30_000)
    return agent
  }

  /** `fedvm site SUB --config SITE ARGS` (or `fedvm migrate …`) in the site's namespace. */
  async cli (sub: string, ...args: string[]): Promise<CliResult> {
    const command = sub === 'migrate' ? ['migrate'] : ['site', sub]
    return await runFedvmIn(this.net.name, [...command, '--config', this.configFile, ...args])
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.agent?.stop()
    await this.daemon?.stop()
    await this.libvirt.stop()
  }
}
