import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Federation } from '../protocol/support/federation'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'

// A → B → C: A places through B, which delegates to C; A never learns C's address and the files
// flow straight from A's proxy to C's. Then scenario 2: C forces the VM away; B cannot place it and
// escalates to A, which performs it; D's proxy pulls straight from C's.
t.test('delegation chain, then a forced migration escalated to the primary', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.21', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b', 'site-d'], policy: { delegate: true, expose: 'all', acceptFrom: [], prefer: ['site-b'] } },
    { id: 'site-b', ip: '127.0.0.22', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-c', ip: '127.0.0.23', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'] },
    { id: 'site-d', ip: '127.0.0.24', hosts: [{ id: 'd1', maxVms: 1 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 2 * 1024 * 1024, 'domain.xml': 700 })

  const placed = await fed.cli('site-a', 'place', '--vm', 'vm7', '--dir', image)
  t.equal(placed.code, 0, 'placed')
  t.match(placed.json, { outcome: 'migrated', destination: 'site-b', digestsAgree: true })
  t.same(await digestsOf(join(fed.vmDir('site-c', 'c1'), 'vm7')), digests, 'the VM landed on site-c, byte-exact')
  t.same((await fed.cli('site-a', 'status')).json.locations, [{ vmId: 'vm7', kind: 'partner', target: 'site-b', upstream: null }])
  t.same((await fed.cli('site-b', 'status')).json.locations, [{ vmId: 'vm7', kind: 'partner', target: 'site-c', upstream: 'site-a' }])
  t.same((await fed.cli('site-c', 'status')).json.locations, [{ vmId: 'vm7', kind: 'host', target: 'c1', upstream: 'site-b' }])

  const c = fed.site('site-c').config as { listen: string, proxies: Array<{ listen: string }> }
  const cAddresses = [c.listen, ...c.proxies.map((p) => p.listen), '127.0.0.23']
  const aKnows = fed.daemon('site-a').stderr + readFileSync(join(fed.site('site-a').dir, 'state', 'site.db')).toString('latin1')
  for (const address of cAddresses) t.notOk(aKnows.includes(address), `site-a never saw ${address}`)
  t.notOk(fed.daemon('site-b').events().some((e) => e.event === 'transfer-progress' || e.event === 'transfer-received'), 'no file went through site-b')
  t.ok(fed.daemon('site-c').events().some((e) => e.event === 'transfer-received'), 'site-c\'s proxy received the files')

  // Scenario 2: site-c must see the VM go (host maintenance).
  const evicted = await fed.cli('site-c', 'evict', '--vm', 'vm7')
  t.equal(evicted.code, 0, evicted.raw.stdout + evicted.raw.stderr)
  t.match(evicted.json, { outcome: 'escalated', to: 'site-a', answer: { outcome: 'performed', by: 'site-a', result: { outcome: 'migrated', destination: 'site-d', digestsAgree: true } } })
  t.same(await digestsOf(join(fed.vmDir('site-d', 'd1'), 'vm7')), digests, 'the VM is on site-d, byte-exact')
  t.notOk(existsSync(join(fed.vmDir('site-c', 'c1'), 'vm7')), 'and no longer on site-c')
  t.same((await readdir(fed.vmDir('site-c', 'c1'))).filter((n) => !n.startsWith('.')), [])
  t.same((await fed.cli('site-a', 'status')).json.locations, [{ vmId: 'vm7', kind: 'partner', target: 'site-d', upstream: null }], 'site-a now delegates to site-d')
  t.same((await fed.cli('site-b', 'status')).json.locations, [], 'site-b forgot the VM')
  t.same((await fed.cli('site-c', 'status')).json.locations, [], 'site-c forgot the VM')
  t.same((await fed.cli('site-d', 'status')).json.locations, [{ vmId: 'vm7', kind: 'host', target: 'd1', upstream: 'site-a' }])
  t.notOk(fed.daemon('site-a').events().some((e) => e.event === 'transfer-progress' || e.event === 'transfer-received'), 'no file went through site-a')
  t.ok(fed.daemon('site-b').events().some((e) => e.event === 'forced-migration-not-performed'), 'site-b could not place it and escalated')

  // With site-b down nobody can take it: the primary answers with a signed problem; the VM stays.
  await fed.stop('site-b')
  const again = await fed.cli('site-d', 'evict', '--vm', 'vm7')
  t.equal(again.code, 1)
  t.match(again.json, { outcome: 'failed', code: 'forced-migration-failed', retryable: true })
  t.same(await digestsOf(join(fed.vmDir('site-d', 'd1'), 'vm7')), digests, 'the VM stays at site-d, intact')
  t.notOk(existsSync(join(fed.vmDir('site-d', 'd1'), '.leaving', 'vm7')), 'and is not left prepared for leaving')
})
