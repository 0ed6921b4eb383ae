import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startWanPair } from '../support/federation/wan-pair'
import { makeVmDir } from '../protocol/support/vm-files'
import { sleep } from '../support/wait'

// Two directory-host sites in their own network namespaces over a 50 ms RTT, 1 % loss link. web-1
// runs at B for A. B asks A (the site that delegated web-1 to it) to take web-1 back with `fedvm
// site evict` just as B is cut off for 30 s: the request reaches A after A's timestamp window (its
// connection is made, or it is retransmitted, only after the partition), A refuses it unread as
// stale, B signs it afresh and sends it once more, and web-1 moves to A.

const PARTITION_MS = 30_000
const WEB = 'web-1'

t.test('fedvm site evict across a 30 s partition: the held-up request is signed afresh, web-1 moves', async (t) => {
  const { root, network, netB, a, b, close } = await startWanPair({ shape: { rttMs: 50, lossPercent: 1 }, aHosts: [{ id: 'a1', maxVms: 1 }], bHosts: [{ id: 'b1', maxVms: 3 }] })
  t.teardown(async () => await close((line) => t.comment(line)))
  // A's host is full while web-1 is placed (so it goes to B), then emptied (so A can take it back).
  for (const vm of ['filler', WEB]) await makeVmDir(join(root, vm), { 'disk.img': 64 * 1024 })
  t.match((await a.cli('place', '--vm', 'filler', '--dir', join(root, 'filler'))).json, { outcome: 'migrated', destination: 'site-a' })
  t.match((await a.cli('place', '--vm', WEB, '--dir', join(root, WEB))).json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 runs at B')
  t.match((await a.cli('migrate', '--vm', 'filler')).json, { outcome: 'migrated', destination: 'site-b' }, 'A\'s host has room again')

  const fromEvent = b.daemon!.events().length
  await network.partition(netB)
  const evicting = b.cli('evict', '--vm', WEB)
  await sleep(PARTITION_MS)
  await network.heal(netB)
  const evicted = await evicting
  t.equal(evicted.code, 0, `the eviction succeeded after the partition (not refused as stale): ${evicted.stdout}${evicted.stderr}`)
  const resigned = b.daemon!.events().slice(fromEvent).find((e) => e.event === 'send-resigned' && e.op === 'forced-migration')
  t.ok(resigned, `B signed its held-up request afresh (${JSON.stringify(resigned)})`)
  t.ok(a.daemon!.events().some((e) => e.event === 'refused' && e.op === 'forced-migration' && e.code === 'stale-timestamp'), 'A had refused the held-up one as stale')
  const [atA, atB] = [await a.locations(), await b.locations()]
  t.match(atA.get(WEB), { kind: 'host', target: 'a1' }, 'web-1 runs at A')
  t.notOk(atB.get(WEB)?.kind === 'host', 'and no longer at B')
  t.notOk(existsSync(join(b.vmDir('b1'), WEB)), 'no copy left at B')
  t.ok(existsSync(join(a.vmDir('a1'), WEB)), 'its files are at A')
})
