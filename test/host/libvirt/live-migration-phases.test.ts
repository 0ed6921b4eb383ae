import t from 'tap'
import { randomBytes } from 'node:crypto'
import { hostname, loadavg, tmpdir } from 'node:os'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { join } from 'node:path'
import { LiveDestination } from '../../../host/libvirt/live-destination'
import { LIVE_CHANNELS, localSocketPath } from '../../../host/libvirt/live-params'
import { progressLine, type LiveProgress } from '../../../host/libvirt/live-progress'
import { LiveSource } from '../../../host/libvirt/live-source'
import { liveStatusesAgree } from '../../../host/libvirt/live-status'
import { readTlsIdentity, writeTlsIdentity, type TlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { ProtocolError } from '../../../protocol/errors'
import { StreamPark, StreamParker } from '../../../protocol/proxy/stream-relay'
import { ensureGuestImage } from '../../support/vm/guest-image'
import { chooseDomainType } from '../../support/vm/kvm-probe'
import { LibvirtHost } from '../../support/vm/libvirt-host'
import type { Teardownable } from '../../support/teardownable'
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

/** Both ends of one live migration, the relay between them; each started part is stopped at t's teardown. */
async function liveMigration (t: Teardownable, a: LibvirtHost, b: LibvirtHost, ids: Awaited<ReturnType<typeof identities>>, name: string): Promise<{ source: LiveSource, destination: LiveDestination, parkers: StreamParker[], crossing: Buffer[] }> {
  const id = randomBytes(8).toString('hex')
  const crossing: Buffer[] = []
  const source = await LiveSource.begin({ uri: a.uri, domain: name, id })
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

  const { source, destination, parkers, crossing } = await liveMigration(t, a, b, ids, name)
  t.same(source.offer.disks, [{ name: `${name}.img`, format: 'raw', bytes: 16 * 1024 * 1024 }], 'the disk travels as a name, a format and a size')
  const started = Date.now()
  const progress: LiveProgress[] = []
  const performed = await source.perform(destination.cookie, { onProgress: (p) => progress.push(p), progressEveryMs: 200 })
  crossing.push(performed)
  const finished = await destination.finish(performed, false)
  if (finished === undefined) throw new Error('Finish returned no domain')
  crossing.push(finished.cookie)
  const sstat = source.status(performed)
  const dstat = await destination.status()
  t.same(dstat, sstat, 'dstat = sstat: the same UUID, disk names and sizes, and a completed job at both ends')
  t.ok(liveStatusesAgree(dstat, sstat))
  await source.confirm(finished.cookie, false)
  const elapsed = Date.now() - started

  t.equal(finished.uuid, domain.uuid, 'the same domain (UUID) runs at the Destination')
  t.match(await b.virsh('domstate', name), /running/)
  t.notOk((await a.virsh('list', '--all', '--name')).includes(name), 'the Source no longer has it')
  t.ok(parkers.reduce((n, p) => n + p.joined, 0) >= 2, 'both the migration and the NBD stream went through the relay')
  const downtime = /<downtime>(\d+)<\/downtime>/.exec(performed.toString())?.[1]
  t.comment(`live migration: ${elapsed} ms Perform..Confirm, downtime ${String(downtime)} ms (libvirt's, from Perform's cookie); progress samples: ${progress.length}${progress.length > 0 ? `, last: ${progressLine(progress[progress.length - 1])}` : ''}; load ${loadavg()[0].toFixed(1)}`)
  for (const cookie of crossing) {
    t.notOk(cookie.toString().includes(`<hostname>${hostname()}<`), 'no cookie that crossed names this machine')
  }
  // The guest kept running: its console at the Destination never shows a new boot.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  t.notOk((await readFile(join(b.dir, 'vms', name, `${name}.console.log`), 'utf8').catch(() => '')).includes(BOOT_MARKER), 'no reboot at the Destination')
  t.match(await b.virsh('domstate', name), /running/, 'still running two seconds later')
})

t.test('the Destination\'s libvirtd killed mid-stream: the VM runs at the Source only', async (t) => {
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const [a, b] = await LibvirtHost.startAll(t, [{ tag: `${tag}a` }, { tag: `${tag}b` }])
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const name = `fedvm-${tag}-kill`
  const domain = await startTestDomain(a, { name, image, type, memoryMiB: 256, diskMiB: 64 })
  await waitGuestReady(domain, 120_000)
  const { source, destination } = await liveMigration(t, a, b, ids, name)

  // Killed as soon as libvirt reports the running job: the streams are then under way.
  let killed = false
  const kill = (): void => {
    if (killed) return
    killed = true
    const pid = Number(readFileSync(join(b.dir, 'run', 'libvirtd.pid'), 'utf8').trim())
    process.kill(pid, 'SIGKILL')
  }
  let performed: Buffer | undefined
  let performError: Error | undefined
  try {
    performed = await source.perform(destination.cookie, { onProgress: kill, progressEveryMs: 100 })
  } catch (err) {
    performError = err as Error
  }
  t.ok(killed, 'the Destination\'s libvirtd was killed while Perform ran')
  t.comment(`Perform ${performError === undefined ? 'completed (the Destination QEMU outlives its libvirtd)' : `failed: ${performError.message}`}`)
  // Finish cannot succeed without the Destination's libvirtd: the Source is told so and keeps the VM.
  const finished = await destination.finish(performed ?? Buffer.alloc(0), performed === undefined).catch(() => undefined)
  t.equal(finished, undefined, 'Finish did not succeed')
  t.notOk(liveStatusesAgree(await destination.status(), source.status(performed ?? Buffer.alloc(0))), 'dstat differs from sstat: the token would not be spent')
  await source.confirm(Buffer.alloc(0), true)
  t.match(await a.virsh('domstate', name), /running/, 'the VM runs at the Source')
  await b.restartLibvirtd()
  const there = await waitUntil(async () => !(await b.virsh('list', '--name')).includes(name), 60_000)
  t.ok(there, 'the restarted Destination libvirtd runs no copy of it')
  t.notOk((await readFile(domain.consoleLog, 'utf8')).split(BOOT_MARKER).length > 2, 'the Source\'s guest never rebooted')
})

async function waitUntil (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

async function waitFor (check: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
