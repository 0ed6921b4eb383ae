import t from 'tap'
import { join } from 'node:path'
import { Federation } from '../support/federation'
import { digestsOf, makeVmDir } from '../support/vm-files'

// The Controller ranks its own hosts first; `fedvm migrate --to SITE|HOST` pins the destination to
// this site, one partner, or one host of this site. Two real site daemons on loopback.

t.test('own hosts first, unless --to pins a partner or a host', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.31', hosts: [{ id: 'a1', maxVms: 1 }, { id: 'a2', maxVms: 1 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.32', hosts: [{ id: 'b1', maxVms: 4 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image-vm1')
  const digests = await makeVmDir(image, { 'disk.img': 1024 * 1024 + 3, 'domain.xml': 500 })
  const where = async (): Promise<unknown> => (await fed.cli('site-a', 'status')).json.locations.find((l: { vmId: string }) => l.vmId === 'vm1')
  const ok = (what: string, result: { code: number | null, raw: { stdout: string, stderr: string } }): void => {
    t.equal(result.code, 0, `${what}: ${result.raw.stdout}${result.raw.stderr}`)
  }

  const placed = await fed.cli('site-a', 'place', '--vm', 'vm1', '--dir', image)
  ok('place', placed)
  t.match(placed.json, { destination: 'site-a', local: true }, 'placed on one of site-a\'s own hosts')
  t.match(await where(), { kind: 'host', target: /^a[12]$/ })

  const toB = await fed.cli('site-a', 'migrate', '--vm', 'vm1', '--to', 'site-b')
  ok('migrate --to site-b', toB)
  t.match(toB.json, { destination: 'site-b', local: false, digestsAgree: true }, '--to site-b: the partner, though site-a has an empty host')
  t.same(await where(), { vmId: 'vm1', kind: 'partner', target: 'site-b', upstream: null })
  t.same(await digestsOf(join(fed.vmDir('site-b', 'b1'), 'vm1')), digests, 'on site-b\'s host, byte for byte')

  const back = await fed.cli('site-a', 'migrate', '--vm', 'vm1')
  ok('migrate', back)
  t.match(back.json, { destination: 'site-a', local: true }, 'without --to, a second migrate brings the VM back to an own host with room')
  t.match(await where(), { kind: 'host' })

  const now = ((await where()) as { target: string }).target
  const elsewhere = now === 'a1' ? 'a2' : 'a1'
  const toHost = await fed.cli('site-a', 'migrate', '--vm', 'vm1', '--to', elsewhere)
  ok(`migrate --to ${elsewhere}`, toHost)
  t.match(toHost.json, { destination: 'site-a', local: true })
  t.match(await where(), { kind: 'host', target: elsewhere }, `--to ${elsewhere}: that host`)
  t.same(await digestsOf(join(fed.vmDir('site-a', elsewhere), 'vm1')), digests)

  const sameHost = await fed.cli('site-a', 'migrate', '--vm', 'vm1', '--to', elsewhere)
  t.equal(sameHost.code, 1, 'pinned to the host it is on: nothing to do')
  t.match(sameHost.json, { outcome: 'failed', code: 'no-placement', detail: `${elsewhere} offered no room for the VM` })
  t.match(await where(), { kind: 'host', target: elsewhere }, 'the VM stays')

  const stranger = await fed.cli('site-a', 'migrate', '--vm', 'vm1', '--to', 'site-z')
  t.equal(stranger.code, 1)
  t.match(stranger.json, { outcome: 'failed', code: 'bad-request', detail: /to: "site-z" is neither this site, a partner nor a host of this site/ })
})
