import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Federation } from '../protocol/support/federation'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'

type Event = Record<string, unknown>

/** The client certificates a site's transfer proxies accepted a connection from. */
function proxyPeers (events: Event[]): Set<string> {
  return new Set(events.filter((e) => e.event === 'proxy-connection').map((e) => String(e.peer)))
}

function fingerprintOf (fed: Federation, id: string): string {
  return fed.site(id).keys.tlsFingerprint.toUpperCase()
}

/** What a site's log and state database hold: where an address it learnt would show. */
function knows (fed: Federation, id: string): string {
  return fed.daemon(id).stderr + readFileSync(join(fed.site(id).dir, 'state', 'site.db')).toString('latin1')
}

// A → B → C with B relaying (policy.relayTransfers): A's proxy serves only B's proxy, C's proxy pulls
// only from B's, and neither end's site learns the other's proxy address. Then B stops relaying and
// the next placement goes straight from A's proxy to C's: the same checks see it.
t.test('an Intermediary relays the files between Source and Destination proxies', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.41', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-b', ip: '127.0.0.42', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all', relayTransfers: true } },
    { id: 'site-c', ip: '127.0.0.43', hosts: [{ id: 'c1', maxVms: 2 }], partners: ['site-b'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const [a, b, c] = ['site-a', 'site-b', 'site-c'].map((id) => fingerprintOf(fed, id))
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 3 * 1024 * 1024 + 12345, 'domain.xml': 700 })

  const placed = await fed.cli('site-a', 'place', '--vm', 'vm1', '--dir', image)
  t.equal(placed.code, 0, placed.raw.stdout + placed.raw.stderr)
  if (placed.code !== 0) t.comment(['site-a', 'site-b', 'site-c'].map((id) => `${id}:\n${fed.daemon(id).stderr}`).join('\n'))
  t.match(placed.json, { outcome: 'migrated', destination: 'site-b', digestsAgree: true })
  t.same(await digestsOf(join(fed.vmDir('site-c', 'c1'), 'vm1')), digests, 'the VM landed on site-c, byte-exact')

  const aPeers = proxyPeers(fed.daemon('site-a').events())
  const bPeers = proxyPeers(fed.daemon('site-b').events())
  // C's proxy pulls with a certificate it made for this transfer (what its offer named), never its site's.
  t.same([...aPeers], [b], 'A\'s proxy accepted connections from B\'s proxy only')
  t.equal(bPeers.size, 1, 'B\'s proxy (the relay) accepted connections from one certificate')
  t.ok([...bPeers].every((peer) => peer !== c && peer !== a && peer !== b), 'C\'s transfer certificate: none of the sites\' own')
  t.notOk(aPeers.has(c) || [...bPeers].some((peer) => aPeers.has(peer)), 'C\'s proxy never connected to A\'s')
  t.ok(fed.daemon('site-c').events().some((e) => e.event === 'transfer-received'), 'C\'s proxy received the files')

  const proxiesOf = (id: string): string[] => (fed.site(id).config as { proxies: Array<{ listen: string }> }).proxies.map((p) => p.listen)
  const aKnows = knows(fed, 'site-a')
  for (const address of [...proxiesOf('site-c'), '127.0.0.43']) t.notOk(aKnows.includes(address), `site-a never saw ${address}`)
  const cKnows = knows(fed, 'site-c')
  for (const address of [...proxiesOf('site-a'), '127.0.0.41']) t.notOk(cKnows.includes(address), `site-c never saw ${address}`)
  t.notOk(cKnows.includes(a), 'site-c never saw A\'s certificate')

  // Without the policy the files go straight from A's proxy to C's, and A's proxy log says so.
  await fed.stop('site-b')
  await fed.reconfigure('site-b', (config) => { config.policy.relayTransfers = false })
  await fed.start('site-b')
  const image2 = join(fed.root, 'image2')
  const digests2 = await makeVmDir(image2, { 'disk.img': 1024 * 1024, 'domain.xml': 500 })
  const direct = await fed.cli('site-a', 'place', '--vm', 'vm2', '--dir', image2)
  t.equal(direct.code, 0, direct.raw.stdout + direct.raw.stderr)
  t.same(await digestsOf(join(fed.vmDir('site-c', 'c1'), 'vm2')), digests2, 'the second VM landed on site-c, byte-exact')
  const directPeers = [...proxyPeers(fed.daemon('site-a').events())].filter((peer) => peer !== b)
  t.equal(directPeers.length, 1, 'without relaying, C\'s proxy connected to A\'s')
  t.ok(directPeers[0] !== c && !bPeers.has(directPeers[0]), 'with a new transfer certificate, not C\'s site certificate nor the relayed transfer\'s')
  t.same([...proxyPeers(fed.daemon('site-b').events())], [], 'and none to B\'s')
})
