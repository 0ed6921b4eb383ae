import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Federation } from '../protocol/support/federation'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'

// Usage scenario 1: the primary site lacks room, so the VM goes to a partner; then scenario 3 inside a site.
t.test('primary placement: the primary has no room, a partner takes the VM', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.11', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.12', hosts: [{ id: 'b1', maxVms: 1 }, { id: 'b2', maxVms: 1 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image-vm1')
  const digests = await makeVmDir(image, { 'disk.img': 3 * 1024 * 1024 + 17, 'domain.xml': 900 })

  const placed = await fed.cli('site-a', 'place', '--vm', 'vm1', '--dir', image)
  t.equal(placed.code, 0, placed.raw.stdout + placed.raw.stderr)
  t.match(placed.json, { vm: 'vm1', outcome: 'migrated', destination: 'site-b', local: false, digestsAgree: true, bytes: 3 * 1024 * 1024 + 17 + 900 })
  const landed = ['b1', 'b2'].map((h) => join(fed.vmDir('site-b', h), 'vm1')).filter((d) => existsSync(d))
  t.equal(landed.length, 1, 'the VM is on exactly one host of site-b')
  t.same(await digestsOf(landed[0]), digests, 'byte-exact copy')
  t.same(await digestsOf(image), digests, 'the owner\'s image is left as it was')

  const statusA = await fed.cli('site-a', 'status')
  t.same(statusA.json.locations, [{ vmId: 'vm1', kind: 'partner', target: 'site-b', upstream: null }], 'site-a records only the partner it delegated to')
  const statusB = await fed.cli('site-b', 'status')
  t.equal(statusB.json.locations[0].kind, 'host')
  t.equal(statusB.json.locations[0].upstream, 'site-a')

  // Scenario 3: site-b moves the VM between its own hosts through the same path.
  const moved = await fed.cli('site-b', 'migrate', '--vm', 'vm1')
  t.equal(moved.code, 0, moved.raw.stdout + moved.raw.stderr)
  t.match(moved.json, { outcome: 'migrated', destination: 'site-b', local: true, digestsAgree: true })
  const now = ['b1', 'b2'].map((h) => join(fed.vmDir('site-b', h), 'vm1')).filter((d) => existsSync(d))
  t.equal(now.length, 1, 'still exactly one copy')
  t.not(now[0], landed[0], 'on the other host')
  t.same(await digestsOf(now[0]), digests)
  const statusB2 = await fed.cli('site-b', 'status')
  t.match(statusB2.json.locations, [{ vmId: 'vm1', kind: 'host', upstream: 'site-a' }], 'site-b still knows it is responsible, upstream kept')
})
