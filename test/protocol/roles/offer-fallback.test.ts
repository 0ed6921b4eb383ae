import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runController } from '../../../protocol/roles/controller'
import { DirHost } from '../../../host/vm-folder/dir-host'
import type { VmHost } from '../../../host/vm-folder/vm-host'
import { parseSiteConfig } from '../../../protocol/site/config'
import { startSite } from '../../../protocol/site/site-daemon'
import { freePort } from '../support/federation'
import { runFedvm } from '../support/fedvm-process'
import { digestsOf, makeVmDir } from '../support/vm-files'

// The Controller's fallback: an offer whose host cannot run the VM (its confirm fails) gives way to the
// next one. One site in this process (real proxies, real directory hosts); the refusing host is a
// DirHost whose confirm throws, as a libvirt host's define or restore can.

class RefusingHost extends DirHost {
  confirms = 0
  override async confirm (): Promise<void> {
    this.confirms++
    throw new Error('define failed: this host cannot run the VM')
  }
}

/** Offers room, then has none when the transfer comes (offers reserve nothing). */
class FillingHost extends DirHost {
  asked = 0
  override async capacity (): Promise<{ used: number, max: number }> {
    return { used: this.asked++ === 0 ? 0 : 9, max: 9 }
  }
}

t.test('a destination that cannot run the VM gives way to the next offer; with none left the VM stays', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fedvm-fallback-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const keygen = await runFedvm(['keygen', '--site', 'site-f', '--out', join(root, 'keys')])
  t.equal(keygen.code, 0, keygen.stderr)
  const config = parseSiteConfig({
    id: 'site-f', listen: `127.0.0.1:${await freePort('127.0.0.1')}`, keys: 'keys', stateDir: 'state',
    hosts: [{ id: 'good', vmDir: 'good', maxVms: 2 }, { id: 'refusing', vmDir: 'refusing', maxVms: 5 }],
    proxies: [{ listen: `127.0.0.1:${await freePort('127.0.0.1')}` }],
  }, join(root, 'site.json'))
  const events: Array<Record<string, unknown>> = []
  const running = await startSite(config, (e) => { events.push(e) })
  t.teardown(() => running.close())
  const site = running.site
  const refusing = new RefusingHost('refusing', join(root, 'refusing'), 5)
  site.hosts.set('refusing', refusing as VmHost)

  // Primary placement from an intake folder: the refusing host has more room, so it ranks first.
  const intake = join(root, 'intake')
  const digests = await makeVmDir(intake, { 'disk.img': 3 * 1024 * 1024 + 5, 'domain.xml': 700 })
  site.state.setLocation({ vmId: 'vm1', kind: 'intake', target: intake, upstream: null, descriptor: { id: 'vm1' }, version: site.newVersion() })
  const placed = await runController(site, 'vm1', [])
  t.match(placed, { outcome: 'migrated', destination: 'site-f', local: true, offers: 2, attempts: 1 })
  t.equal(refusing.confirms, 1, 'the first offer was tried once: a host that cannot run the VM is not retried')
  t.match(events.find((e) => e.event === 'offer-failed'), { vm: 'vm1', code: 'transfer-failed', next: true })
  t.same(await digestsOf(join(root, 'good', 'vm1')), digests, 'the VM is on the next host, byte for byte')
  t.same(await readdir(join(root, 'refusing', '.incoming')), [], 'the refusing host dropped what it received')
  t.match(site.state.location('vm1'), { kind: 'host', target: 'good' })
  t.same(site.state.unsettledMigrations(), [], 'every decision reached both sides')

  // Now the refusing host is the only offer: the migration fails and the VM stays, running, where it is.
  const failed = runController(site, 'vm1', [])
  await t.rejects(failed, { code: 'transfer-failed', message: /the VM stays where it was/ })
  t.equal(refusing.confirms, 2)
  t.same(await digestsOf(join(root, 'good', 'vm1')), digests, 'still on its host')
  t.notOk(existsSync(join(root, 'good', '.leaving', 'vm1')), 'no longer prepared for leaving (stayHere ran)')
  t.match(site.state.location('vm1'), { kind: 'host', target: 'good' })

  // A host that filled up between its offer and the transfer (no-room) is passed over at once, not retried.
  const filling = new FillingHost('filling', join(root, 'filling'), 9)
  site.hosts.set('filling', filling as VmHost)
  const second = join(root, 'intake2')
  const digests2 = await makeVmDir(second, { 'disk.img': 1024 * 1024 })
  site.state.setLocation({ vmId: 'vm2', kind: 'intake', target: second, upstream: null, descriptor: { id: 'vm2' }, version: site.newVersion() })
  const before = events.length
  const placed2 = await runController(site, 'vm2', [])
  t.match(placed2, { outcome: 'migrated', local: true, offers: 3, attempts: 1 })
  const failures = events.slice(before).filter((e) => e.event === 'offer-failed' || e.event === 'initiate-failed' || e.event === 'commit-refused').map((e) => `${String(e.event)}:${String(e.code)}`)
  // The refusing host takes the files; it refuses when the Controller's commit asks it to run the VM.
  t.same(failures, ['initiate-failed:no-room', 'offer-failed:no-room', 'commit-refused:transfer-failed', 'offer-failed:transfer-failed'], 'filling (no room now), then refusing, each tried once')
  t.same(await digestsOf(join(root, 'good', 'vm2')), digests2, 'the third offer took it')
})
