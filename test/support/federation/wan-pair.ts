/**
 * Two directory-host sites, site-a and site-b, each in its own network namespace, joined by a
 * WanNetwork link of the given shape, partners of each other and running (`fedvm site run`).
 * A keeps a primary store (`monitoring: {}`); B has a local ingest for its hosts' agents.
 * `close()` stops what was started, last first (daemons, link and namespaces, the folder), also
 * after a failure; pass it to t.teardown with whatever else the test adds through `onClose`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DirSite } from './dir-site'
import { WanNetwork, type LinkShape, type WanSite } from './wan-network'

export interface WanPair {
  root: string
  network: WanNetwork
  netA: WanSite
  netB: WanSite
  a: DirSite
  b: DirSite
  /** Both daemons' last log lines, for a failing wait's message. */
  logs: () => string
  /** Runs at close(), before what was registered earlier. */
  onClose: (clean: () => Promise<unknown>) => void
  close: (report?: (line: string) => void) => Promise<void>
}

export async function startWanPair (o: { shape: LinkShape, aHosts: Array<{ id: string, maxVms: number }>, bHosts: Array<{ id: string, maxVms: number }> }): Promise<WanPair> {
  const cleanups: Array<() => Promise<unknown>> = []
  const close = async (report?: (line: string) => void): Promise<void> => {
    for (const clean of cleanups.splice(0).reverse()) await clean().catch((err) => report?.(`cleanup: ${String(err)}`))
  }
  try {
    const root = await mkdtemp(join(tmpdir(), 'fvm-wan-'))
    cleanups.push(async () => await rm(root, { recursive: true, force: true }))
    const { network, sites: [netA, netB] } = await WanNetwork.create(randomBytes(3).toString('hex'), ['a', 'b'])
    cleanups.push(async () => await network.destroy())
    await network.setShape(o.shape)
    const a = await DirSite.create({ id: 'site-a', hosts: o.aHosts, net: netA, dir: join(root, 'a') })
    const b = await DirSite.create({ id: 'site-b', hosts: o.bHosts, net: netB, dir: join(root, 'b') })
    await a.writeConfig([b], { monitoring: {} })
    await b.writeConfig([a], { monitoring: { ingest: b.ingestListen, ingestAuth: 'none' } })
    cleanups.push(async () => await a.stop(), async () => await b.stop())
    await Promise.all([a.startDaemon(), b.startDaemon()])
    const logs = (): string => `--- site-a\n${a.daemon?.stderr.slice(-4000) ?? ''}\n--- site-b\n${b.daemon?.stderr.slice(-4000) ?? ''}`
    return { root, network, netA, netB, a, b, logs, onClose: (clean) => { cleanups.push(clean) }, close }
  } catch (err) {
    await close()
    throw err
  }
}
