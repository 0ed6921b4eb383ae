import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Children, Daemon } from './children'

/** What `fedvm keygen` prints: what a partner puts in its config. */
export interface SiteKeys { id: string, publicKey: string, tlsFingerprint: string, sealPublicKey: string }

export interface SiteShape {
  id: string
  /** What the site is in the story, for the printed line. */
  role: string
  partners: string[]
  /** Directory hosts (`vmDir` under the site's folder), or hosts built by the caller (libvirt). */
  hosts: Array<{ id: string, maxVms: number, libvirt?: Record<string, unknown> }>
  /** Whether the site's hosts' agents post here (the site relays their deliveries upstream). */
  ingest?: boolean
  monitoring?: Record<string, unknown>
}

/** One running site of the demo's federation, all on 127.0.0.1. */
export class Site {
  daemon?: Daemon
  constructor (readonly shape: SiteShape, readonly dir: string, readonly keys: SiteKeys, readonly ports: { site: number, proxy: number, ingest: number }) {}

  get id (): string { return this.shape.id }
  get configFile (): string { return join(this.dir, 'site.json') }
  get url (): string { return `https://127.0.0.1:${this.ports.site}` }
  get ingestUrl (): string { return `http://127.0.0.1:${this.ports.ingest}/v1/deliveries` }
  get sealPublicKeyFile (): string { return join(this.dir, 'keys', 'seal.pub') }
  get sealSecretKeyFile (): string { return join(this.dir, 'keys', 'seal.key') }
  vmDir (hostId: string): string { return join(this.dir, 'hosts', hostId) }
}

/**
 * The federation of the demo: each site's keys made by `fedvm keygen`, each site's config listing
 * its partners' public keys and TLS fingerprints (the exchange partners do by hand), then every
 * `fedvm site run` started and awaited until it listens.
 */
export async function startSites (children: Children, root: string, shapes: SiteShape[]): Promise<Site[]> {
  const sites: Site[] = []
  for (const shape of shapes) {
    const dir = join(root, shape.id)
    await mkdir(dir, { recursive: true })
    const keygen = await children.run(`keygen-${shape.id}`, ['keygen', '--site', shape.id, '--out', join(dir, 'keys')])
    if (keygen.code !== 0) throw new Error(`fedvm keygen --site ${shape.id} failed (${String(keygen.code)}): ${keygen.stderr.trim()}`)
    sites.push(new Site(shape, dir, JSON.parse(keygen.stdout) as SiteKeys, { site: await freePort(), proxy: await freePort(), ingest: await freePort() }))
  }
  const byId = new Map(sites.map((s) => [s.id, s]))
  for (const site of sites) await writeFile(site.configFile, JSON.stringify(configOf(site, site.shape.partners.map((p) => byId.get(p)!)), null, 2))
  for (const site of sites) site.daemon = children.start(site.id, ['site', 'run', '--config', site.configFile])
  for (const site of sites) await site.daemon!.waitFor(/"event":"listening"/, 30_000)
  return sites
}

function configOf (site: Site, partners: Site[]): Record<string, unknown> {
  return {
    id: site.id,
    listen: `127.0.0.1:${site.ports.site}`,
    keys: 'keys',
    partners: partners.map((p) => ({ id: p.id, url: p.url, publicKey: p.keys.publicKey, tlsFingerprint: p.keys.tlsFingerprint })),
    policy: { delegate: true, expose: 'all' },
    hosts: site.shape.hosts.map((h) => ({ id: h.id, vmDir: site.vmDir(h.id), maxVms: h.maxVms, ...(h.libvirt ? { libvirt: h.libvirt } : {}) })),
    proxies: [{ listen: `127.0.0.1:${site.ports.proxy}` }],
    stateDir: 'state',
    // The demo's agents post unsigned: the ingest listens on loopback only.
    monitoring: { ...(site.shape.ingest === true ? { ingest: `127.0.0.1:${site.ports.ingest}`, ingestAuth: 'none' } : {}), ...site.shape.monitoring },
  }
}

/** A port free on 127.0.0.1 right now (the kernel's pick), for a config written before the daemon starts. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
