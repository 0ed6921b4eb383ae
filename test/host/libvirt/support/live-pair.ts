/** Shared by the live-migration tests: TLS identities, a Source proxy serving only the stream channel, both ends of one migration with the relay between them. */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LiveDestination } from '../../../../host/libvirt/live-destination'
import { LIVE_CHANNELS, localSocketPath } from '../../../../host/libvirt/live-params'
import { LiveSource, type BeginOptions } from '../../../../host/libvirt/live-source'
import { readTlsIdentity, writeTlsIdentity, type TlsIdentity } from '../../../../protocol/crypto/tls-certificate'
import { ProtocolError } from '../../../../protocol/errors'
import { StreamPark, StreamParker } from '../../../../protocol/proxy/stream-relay'
import { ensureGuestImage } from '../../../support/vm/guest-image'
import { chooseDomainType } from '../../../support/vm/kvm-probe'
import { LibvirtHost } from '../../../support/vm/libvirt-host'
import { startTestDomain, waitGuestReady, type TestDomain } from '../../../support/vm/test-domain'
import type { Teardownable } from '../../../support/teardownable'

export const BOOT_MARKER = 'fedvm-guest: modules loaded'

export type Identities = { source: TlsIdentity, destination: TlsIdentity, stranger: TlsIdentity, dir: string }

export async function identities (): Promise<{ source: TlsIdentity, destination: TlsIdentity, stranger: TlsIdentity, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-live-tls-'))
  const one = async (name: string): Promise<TlsIdentity> => {
    await mkdir(join(dir, name))
    await writeTlsIdentity(join(dir, name), name)
    return await readTlsIdentity(join(dir, name))
  }
  return { source: await one('source'), destination: await one('destination'), stranger: await one('stranger'), dir }
}

/** The Source proxy's TLS server on loopback: only the stream channel's upgrade is served. */
export async function sourceProxy (tls: TlsIdentity, park: StreamPark): Promise<{ server: Server, url: string }> {
  const server = createServer({ key: tls.key, cert: tls.cert, requestCert: true, rejectUnauthorized: false }, (_req, res) => { res.statusCode = 404; res.end() })
  server.on('upgrade', (req, socket) => park.handleUpgrade(req, socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, url: `https://127.0.0.1:${address.port}` }
}

/**
 * Two libvirtds of their own, TLS identities for both ends, and a booted test guest `fedvm-TAG-SUFFIX`
 * running on the first (a); each is stopped or removed at t's teardown.
 */
export async function bootedGuestOnPair (t: Teardownable, suffix: string, size: { memoryMiB: number, diskMiB: number }): Promise<{ a: LibvirtHost, b: LibvirtHost, ids: Identities, name: string, domain: TestDomain, type: 'qemu' | 'kvm' }> {
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const [a, b] = await LibvirtHost.startAll(t, [{ tag: `${tag}a` }, { tag: `${tag}b` }])
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const name = `fedvm-${tag}-${suffix}`
  const domain = await startTestDomain(a, { name, image, type, ...size })
  await waitGuestReady(domain, 120_000)
  return { a, b, ids, name, domain, type }
}

/** Both ends of one live migration, the relay between them; each started part is stopped at t's teardown. */
export async function liveMigration (t: Teardownable, a: LibvirtHost, b: LibvirtHost, ids: Identities, name: string, options: Pick<BeginOptions, 'downtimeRamp' | 'rampAllowed' | 'log' | 'maxDowntimeMs'> = {}): Promise<{ source: LiveSource, destination: LiveDestination, parkers: StreamParker[], crossing: Buffer[] }> {
  const id = randomBytes(8).toString('hex')
  const crossing: Buffer[] = []
  const source = await LiveSource.begin({ uri: a.uri, domain: name, id, ...options })
  t.teardown(async () => await source.close())
  crossing.push(source.offer.cookie)
  const destination = await LiveDestination.prepare({ uri: b.uri, id, domain: name, dir: join(b.dir, 'vms', name), offer: source.offer })
  t.teardown(async () => await destination.close())
  crossing.push(destination.cookie)
  const token = randomBytes(16).toString('hex')
  const park = new StreamPark((presented, _channel, fingerprint) => {
    if (presented !== token || fingerprint !== ids.destination.fingerprint) throw new ProtocolError('token-foreign', 'not this migration')
    return token
  })
  const proxy = await sourceProxy(ids.source, park)
  t.teardown(() => { park.close(); proxy.server.close() })
  for (const channel of LIVE_CHANNELS) await park.listen(token, channel, localSocketPath(a.uri, id, channel))
  const parkers = LIVE_CHANNELS.map((channel) => new StreamParker({
    url: proxy.url, fingerprint: ids.source.fingerprint, token, channel, clientCert: ids.destination, targetPath: destination.socketPath(channel)
  }))
  t.teardown(() => { for (const p of parkers) p.close() })
  return { source, destination, parkers, crossing }
}

export async function waitUntil (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

export async function waitFor (check: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
