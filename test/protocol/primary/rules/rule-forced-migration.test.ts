import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Delivery } from '../../../../protocol/relay/delivery'
import { Federation, freePort } from '../../support/federation'
import { digestsOf, makeVmDir } from '../../support/vm-files'

// The paper's motivation for KPI monitoring: an SLA rule at the primary site A fires on
// deliveries posted to A's ingest once `users > 1000` has held for 30 s of data time, and forces
// the VM away through A's Controller (as `fedvm migrate --vm`): it moves to B's other host.

const VM = 'vm1'
const USERS = 'kpi:users.current_users'

t.test('an SLA rule forces a migration', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.71', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.72', hosts: [{ id: 'b1', maxVms: 1 }, { id: 'b2', maxVms: 1 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  const ingest = `127.0.0.71:${await freePort('127.0.0.71')}`
  await fed.reconfigure('site-a', (c) => {
    c.monitoring = { ingest, ingestAuth: 'none', rules: [
      { name: 'too-busy', when: `${USERS} > 1000 for 30s`, action: 'forced-migration' },
      { name: 'watch-other', when: `${USERS} > 1000`, vm: 'vm-other' },
    ] }
  })
  await fed.start()
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 512 * 1024, 'domain.xml': 500 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', destination: 'site-b' })
  const hostOf = (): string[] => ['b1', 'b2'].filter((h) => existsSync(join(fed.vmDir('site-b', h), VM)))
  const [first] = hostOf()
  t.ok(first, `placed on site-b's ${first}`)

  const a = fed.daemon('site-a')
  const t0 = Date.now() - 120_000
  let n = 0
  const post = async (points: Array<[number, number]>): Promise<void> => {
    const deliveries: Delivery[] = points.map(([at, value]) => ({ id: `d-${n++}`, vm: VM, metric: USERS, format: 'processed', function: 'median', from: t0 + at - 5000, to: t0 + at, value }))
    const answer = await fetch(`http://${ingest}/v1/deliveries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(deliveries) })
    t.equal(answer.status, 200, `posted ${points.length}`)
  }
  const fired = (): Array<Record<string, unknown>> => a.events().filter((e) => e.event === 'rule-fired')

  await post([[0, 1500], [10_000, 1600], [20_000, 1200]])
  await post([[29_999, 2000]])
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.same(fired(), [], 'held 29.999 s of data time: not yet')

  await post([[30_000, 1100], [40_000, 1300]])
  const event = await a.waitForEvent((e) => e.event === 'rule-fired')
  t.match(event, { rule: 'too-busy', vm: VM, metric: USERS, since: t0, at: t0 + 30_000, heldMs: 30_000, action: 'forced-migration', value: 1100 }, 'fired at exactly 30 s, logged as JSON')
  const done = await a.waitForEvent((e) => e.event === 'rule-action-done' || e.event === 'rule-action-failed', 60_000)
  t.match(done, { event: 'rule-action-done', rule: 'too-busy', vm: VM, result: { outcome: 'migrated', destination: 'site-b', digestsAgree: true } }, 'the Controller ran at site-a')

  const now = hostOf()
  t.equal(now.length, 1, 'one copy')
  t.not(now[0], first, `moved to site-b's other host (${now[0]})`)
  t.same(await digestsOf(join(fed.vmDir('site-b', now[0]), VM)), digests, 'byte-exact')

  await post([[50_000, 5000], [90_000, 5000]])
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(fired().length, 1, 'one breach, one firing')

  // The firing is remembered in monitoring.db: after a restart the breach (held another 40 s) is
  // still inside the 5-minute cooldown, so no second forced migration starts.
  await fed.stop('site-a')
  await fed.start('site-a')
  await post([[100_000, 5000], [140_000, 5000]])
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.same(fed.daemon('site-a').events().filter((e) => e.event === 'rule-fired'), [], 'no firing after the restart within the cooldown')
  t.same(hostOf(), now, 'the VM stayed')
})
