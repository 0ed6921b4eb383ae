import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FedvmDaemon, runFedvm, type CliResult } from './fedvm-process'

export interface SiteKeys { id: string, publicKey: string, tlsFingerprint: string, sealPublicKey: string }

export interface SiteSpec {
  id: string
  /** 127.0.0.x, one address per site. */
  ip: string
  hosts?: Array<{ id: string, maxVms: number }>
  partners?: string[]
  policy?: Record<string, unknown>
  proxies?: number
  maxBytesPerSecond?: number
  limits?: Record<string, number>
  /** The site config's `monitoring` section; `ingest: true` there is replaced by a free address on the site's ip. */
  monitoring?: Record<string, unknown>
}

export interface TestSite {
  spec: SiteSpec
  keys: SiteKeys
  dir: string
  configFile: string
  config: Record<string, unknown>
  daemon?: FedvmDaemon
}

/** A free TCP port on an address (bound then released: good enough on a test machine). */
export function freePort (ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, ip, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * Sites as real `fedvm site run` processes on loopback: keys from `fedvm keygen`, configs that name
 * each other as partners, one process each. `t.teardown(() => fed.close())`.
 */
export class Federation {
  readonly sites = new Map<string, TestSite>()

  private constructor (readonly root: string) {}

  static async create (specs: SiteSpec[]): Promise<Federation> {
    const fed = new Federation(await mkdtemp(join(tmpdir(), 'fedvm-fed-')))
    for (const spec of specs) {
      const dir = join(fed.root, spec.id)
      await mkdir(dir, { recursive: true })
      const keygen = await runFedvm(['keygen', '--site', spec.id, '--out', join(dir, 'keys')])
      if (keygen.code !== 0) throw new Error(`keygen failed: ${keygen.stderr}`)
      fed.sites.set(spec.id, { spec, keys: JSON.parse(keygen.stdout), dir, configFile: join(dir, 'site.json'), config: {} })
    }
    for (const site of fed.sites.values()) {
      const { spec } = site
      const partners = (spec.partners ?? []).map((id) => fed.site(id))
      site.config = {
        id: spec.id,
        listen: `${spec.ip}:${await freePort(spec.ip)}`,
        keys: 'keys',
        partners: [],
        policy: spec.policy ?? { delegate: true, expose: 'all' },
        hosts: (spec.hosts ?? []).map((h) => ({ id: h.id, vmDir: `hosts/${h.id}`, maxVms: h.maxVms })),
        proxies: await Promise.all(Array.from({ length: spec.proxies ?? 1 }, async () => ({
          listen: `${spec.ip}:${await freePort(spec.ip)}`, ...(spec.maxBytesPerSecond ? { maxBytesPerSecond: spec.maxBytesPerSecond } : {}),
        }))),
        stateDir: 'state',
        ...(spec.limits ? { limits: spec.limits } : {}),
        // The tests post to the ingest unsigned (postIngest) and publish without host subjects, unless a spec asks for host keys.
        ...(spec.monitoring ? { monitoring: { ingestAuth: 'none', ...spec.monitoring, ...(spec.monitoring.ingest === true ? { ingest: `${spec.ip}:${await freePort(spec.ip)}` } : {}) } } : {}),
      }
      site.config.partners = partners.map((p) => p) // filled below once every listen address is known
    }
    for (const site of fed.sites.values()) {
      site.config.partners = (site.spec.partners ?? []).map((id) => {
        const p = fed.site(id)
        return { id, url: `https://${p.config.listen as string}`, publicKey: p.keys.publicKey, tlsFingerprint: p.keys.tlsFingerprint }
      })
      await writeFile(site.configFile, JSON.stringify(site.config, null, 2))
    }
    return fed
  }

  site (id: string): TestSite {
    const site = this.sites.get(id)
    if (site === undefined) throw new Error(`no site ${id}`)
    return site
  }

  /** A host's VM directory. */
  vmDir (siteId: string, hostId: string): string {
    return join(this.site(siteId).dir, 'hosts', hostId)
  }

  async start (...ids: string[]): Promise<void> {
    await Promise.all((ids.length ? ids : [...this.sites.keys()]).map(async (id) => {
      const site = this.site(id)
      site.daemon = new FedvmDaemon(['site', 'run', '--config', site.configFile])
      await site.daemon.started()
    }))
  }

  /** Rewrites a site's config (stop it first; start it again after). */
  async reconfigure (id: string, edit: (config: Record<string, any>) => void): Promise<void> {
    const site = this.site(id)
    edit(site.config)
    await writeFile(site.configFile, JSON.stringify(site.config, null, 2))
  }

  async stop (id: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.site(id).daemon?.stop(signal)
  }

  daemon (id: string): FedvmDaemon {
    const daemon = this.site(id).daemon
    if (daemon === undefined) throw new Error(`${id} is not running`)
    return daemon
  }

  /** `fedvm site SUB --config SITE ...`: the JSON answer and exit code. */
  async cli (id: string, sub: string, ...args: string[]): Promise<{ code: number | null, json: any, raw: CliResult }> {
    // Migrations go through `fedvm migrate`, the Controller's own command line; the rest through `fedvm site`.
    const command = sub === 'migrate' ? ['migrate'] : ['site', sub]
    const raw = await runFedvm([...command, '--config', this.site(id).configFile, ...args])
    return { code: raw.code, json: raw.json, raw }
  }

  async close (): Promise<void> {
    await Promise.all([...this.sites.values()].map((s) => s.daemon?.stop()))
    await rm(this.root, { recursive: true, force: true })
  }
}
