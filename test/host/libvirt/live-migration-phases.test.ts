import t from 'tap'
import { randomBytes } from 'node:crypto'
import { hostname, tmpdir } from 'node:os'
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { join } from 'node:path'
import { rpcTarget } from '../../../host/libvirt/guest-clock'
import { rewriteSourcePaths } from '../../../host/libvirt/lifecycle-xml'
import { neutraliseCookie } from '../../../host/libvirt/migration-cookie'
import { MigrateParam, type TypedParams } from '../../../host/libvirt/rpc/migration-params'
import {
  beginMigration, confirmMigration, destinationFlags, finishMigration, JOB_STATS_COMPLETED, jobStats, LIVE_COPY_ALL,
  lookupDomain, performMigration, prepareMigration
} from '../../../host/libvirt/rpc/migration-phases'
import { RpcConnection } from '../../../host/libvirt/rpc/rpc-connection'
import { readTlsIdentity, writeTlsIdentity, type TlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { ProtocolError } from '../../../protocol/errors'
import { StreamPark, StreamParker } from '../../../protocol/proxy/stream-relay'
import { ensureGuestImage } from '../../support/vm/guest-image'
import { chooseDomainType } from '../../support/vm/kvm-probe'
import { LibvirtHost } from '../../support/vm/libvirt-host'
import { startTestDomain, waitGuestReady } from '../../support/vm/test-domain'

// Live migration as libvirt's five phases, each on its own side's libvirtd (never one libvirtd
// talking to the other), the cookies neutralised between them, and QEMU's migration and NBD
// streams joined through the stream relay's token-bound TLS channel on loopback.

const BOOT_MARKER = 'fedvm-guest: modules loaded'

async function identities (): Promise<{ source: TlsIdentity, destination: TlsIdentity, stranger: TlsIdentity, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-live-tls-'))
  const one = async (name: string): Promise<TlsIdentity> => {
    await mkdir(join(dir, name))
    await writeTlsIdentity(join(dir, name), name)
    return await readTlsIdentity(join(dir, name))
  }
  return { source: await one('source'), destination: await one('destination'), stranger: await one('stranger'), dir }
}

/** The Source proxy's TLS server on loopback: only the stream channel's upgrade is served. */
async function sourceProxy (tls: TlsIdentity, park: StreamPark): Promise<{ server: Server, url: string }> {
  const server = createServer({ key: tls.key, cert: tls.cert, requestCert: true, rejectUnauthorized: false }, (_req, res) => { res.statusCode = 404; res.end() })
  server.on('upgrade', (req, socket) => park.handleUpgrade(req, socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, url: `https://127.0.0.1:${address.port}` }
}

t.test('the stream channel refuses a token for another VM and another certificate', async (t) => {
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const token = randomBytes(16).toString('hex')
  const refusals: string[] = []
  const park = new StreamPark((presented, _channel, fingerprint) => {
    if (presented !== token) throw new ProtocolError('token-unknown', 'not our token')
    if (fingerprint !== ids.destination.fingerprint) throw new ProtocolError('token-foreign', 'bound to another destination')
    return presented
  }, (e) => { if (e.event === 'stream-refused') refusals.push(String(e.code)) })
  const proxy = await sourceProxy(ids.source, park)
  t.teardown(() => { park.close(); proxy.server.close() })
  const base = { url: proxy.url, fingerprint: ids.source.fingerprint, channel: 'migration', targetPath: join(ids.dir, 'none.sock') }
  const foreignToken = new StreamParker({ ...base, token: randomBytes(16).toString('hex'), clientCert: ids.destination })
  const foreignCert = new StreamParker({ ...base, token, clientCert: ids.stranger })
  t.teardown(() => { foreignToken.close(); foreignCert.close() })
  await waitFor(() => foreignToken.failed !== undefined && foreignCert.failed !== undefined, 20_000)
  t.match(foreignToken.failed?.message, /403 token-unknown/, 'a token the Source did not hand out is refused')
  t.match(foreignCert.failed?.message, /403 token-foreign/, 'the right token from another certificate is refused')
  t.same(refusals.sort(), ['token-foreign', 'token-unknown'])
  t.equal(foreignToken.joined + foreignCert.joined, 0, 'nothing was joined')
})

t.test('a running VM moves live between two libvirtds through the stream relay', async (t) => {
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const [a, b] = await LibvirtHost.startAll(t, [{ tag: `${tag}a` }, { tag: `${tag}b` }])
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const name = `fedvm-${tag}-live`
  const domain = await startTestDomain(a, { name, image, type, memoryMiB: 128, diskMiB: 16 })
  await waitGuestReady(domain, 120_000)

  const source = await RpcConnection.open(rpcTarget(a.uri).socketPath, rpcTarget(a.uri).uri, { timeoutMs: 60_000 })
  const destination = await RpcConnection.open(rpcTarget(b.uri).socketPath, rpcTarget(b.uri).uri, { timeoutMs: 60_000 })
  t.teardown(async () => { await source.close(); await destination.close() })

  // libvirt hands the same unix paths to both ends: each libvirtd's /run/libvirt is its own folder.
  const id = randomBytes(4).toString('hex')
  const params: TypedParams = {
    [MigrateParam.URI]: `unix:///run/libvirt/fedvm-${id}-migration.sock`,
    [MigrateParam.DISKS_URI]: `unix:///run/libvirt/fedvm-${id}-nbd.sock`,
    [MigrateParam.DEST_NAME]: name
  }
  const seenBy = (host: LibvirtHost, channel: string): string => join(host.dir, 'run', `fedvm-${id}-${channel}.sock`)
  const crossing: Buffer[] = []
  const carry = (cookie: Buffer): Buffer => { const out = neutraliseCookie(cookie); crossing.push(out); return out }

  const dom = await lookupDomain(source, name)
  const begun = await beginMigration(source, dom, params, LIVE_COPY_ALL)
  t.match(begun.cookie.toString(), /<hostuuid>/, 'Begin\'s cookie names its host before it is neutralised')

  // The Destination's disk: same size, its own folder; the definition's paths point there.
  const disk = await open(join(b.dir, `${name}.img`), 'w')
  await disk.truncate(16 * 1024 * 1024)
  await disk.close()
  const destXml = rewriteSourcePaths(begun.xml, b.dir)
  const prepared = await prepareMigration(destination, { ...params, [MigrateParam.DEST_XML]: destXml }, carry(begun.cookie), destinationFlags(LIVE_COPY_ALL))

  const token = randomBytes(16).toString('hex')
  const park = new StreamPark((presented, _channel, fingerprint) => {
    if (presented !== token || fingerprint !== ids.destination.fingerprint) throw new ProtocolError('token-foreign', 'not this migration')
    return token
  })
  const proxy = await sourceProxy(ids.source, park)
  t.teardown(() => { park.close(); proxy.server.close() })
  for (const channel of ['migration', 'nbd']) await park.listen(token, channel, seenBy(a, channel))
  const parkers = ['migration', 'nbd'].map((channel) => new StreamParker({
    url: proxy.url, fingerprint: ids.source.fingerprint, token, channel, clientCert: ids.destination, targetPath: seenBy(b, channel)
  }))
  t.teardown(() => { for (const p of parkers) p.close() })

  const started = Date.now()
  let performed: Buffer
  try {
    performed = await performMigration(source, dom, params, carry(prepared.cookie), LIVE_COPY_ALL, { timeoutMs: 300_000 })
  } catch (err) {
    await finishMigration(destination, params, Buffer.alloc(0), destinationFlags(LIVE_COPY_ALL), true).catch(() => {})
    await confirmMigration(source, dom, params, Buffer.alloc(0), LIVE_COPY_ALL, true).catch(() => {})
    t.comment(await a.daemonLog().then((log) => log.slice(-3000)))
    throw err
  }
  const finished = await finishMigration(destination, params, carry(performed), destinationFlags(LIVE_COPY_ALL), false)
  await confirmMigration(source, dom, params, carry(finished.cookie), LIVE_COPY_ALL, false)
  const elapsed = Date.now() - started

  t.equal(finished.dom.uuid, domain.uuid, 'the same domain (UUID) runs at the Destination')
  t.match(await b.virsh('domstate', name), /running/)
  t.notOk((await a.virsh('list', '--all', '--name')).includes(name), 'the Source no longer has it')
  t.equal(parkers.reduce((n, p) => n + p.joined, 0) >= 2, true, 'both the migration and the NBD stream went through the relay')
  const stats = (await jobStats(source, dom, JOB_STATS_COMPLETED).catch(() => undefined))?.stats
  t.comment(`live migration: ${elapsed} ms Perform..Confirm; libvirt: downtime ${String(stats?.downtime)} ms, elapsed ${String(stats?.time_elapsed)} ms, memory ${String(stats?.memory_total)} B, disk ${String(stats?.disk_total)} B`)
  for (const cookie of crossing) {
    t.notOk(cookie.toString().includes(`<hostname>${hostname()}<`), 'no cookie that crossed names this machine')
  }
  // The guest kept running: its console at the Destination never shows a new boot.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  t.notOk((await readFile(join(b.dir, `${name}.console.log`), 'utf8').catch(() => '')).includes(BOOT_MARKER), 'no reboot at the Destination')
  t.match(await b.virsh('domstate', name), /running/, 'still running two seconds later')
})

async function waitFor (check: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
