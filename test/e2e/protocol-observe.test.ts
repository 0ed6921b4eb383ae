import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Delivery } from '../../protocol/relay/delivery'
import { waitFor } from '../support/wait'
import { Federation } from '../protocol/support/federation'
import { runFedvm } from '../protocol/support/fedvm-process'
import { MonitoringStores, postIngest } from '../protocol/support/monitoring-stores'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'

// Intermediaries are consumers too: B delegated vm9 (from its primary A) to C or E and observes
// (monitoring.observe). Deliveries posted at the VM's site pass through B to A; B keeps them (sealed
// ones sealed), answers `fedvm monitor query` for the VM, and its own SLA rule forces the VM away
// through B's own Controller, to the other of B's partners.

const VM = 'vm9'
const LOAD = 'kpi:load.requests'

t.test('an observing Intermediary keeps what it relays and its rule forces a migration', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.65', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [] }, monitoring: {} },
    {
      id: 'site-b', ip: '127.0.0.66', partners: ['site-a', 'site-c', 'site-e'], policy: { delegate: true, expose: 'all' },
      monitoring: { observe: true, rules: [{ name: 'overloaded', when: `${LOAD} > 100`, action: 'forced-migration' }] },
    },
    { id: 'site-c', ip: '127.0.0.67', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'], monitoring: { ingest: true } },
    { id: 'site-e', ip: '127.0.0.68', hosts: [{ id: 'e1', maxVms: 1 }], partners: ['site-b'], monitoring: { ingest: true } },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const stores = new MonitoringStores(fed)
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 256 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', destination: 'site-b' }, 'placed A → B → C or E')
  const where = (): string[] => [['site-c', 'c1'], ['site-e', 'e1']].filter(([site, host]) => existsSync(join(fed.vmDir(site, host), VM))).map(([site]) => site)
  const [first] = where()
  t.ok(first, `placed at ${first}`)
  const other = first === 'site-c' ? 'site-e' : 'site-c'
  const ingest = `http://${(fed.site(first).config.monitoring as { ingest: string }).ingest}/v1/deliveries`

  const now = Date.now()
  const calm: Delivery[] = [10, 20, 30].map((value, i) => ({ id: `calm-${i}`, vm: VM, metric: LOAD, format: 'processed', function: 'mean', from: now + i * 1000 - 1000, to: now + i * 1000, value }))
  const sealed: Delivery = { id: 'sealed-0', vm: VM, metric: 'kpi:secret', format: 'raw', from: now, to: now, sealed: Buffer.from('opaque sealed box bytes').toString('base64') }
  t.equal((await postIngest(ingest, [...calm, sealed])).status, 200)
  await waitFor('the deliveries at B and A', () => stores.deliveries('site-b').length === 4 && stores.deliveries('site-a').length === 4, 30_000).catch(() => {})
  t.same(stores.deliveries('site-b').map((d) => d.id).sort(), ['calm-0', 'calm-1', 'calm-2', 'sealed-0'], 'B kept what it relayed')
  t.same(stores.deliveries('site-a').map((d) => d.id).sort(), ['calm-0', 'calm-1', 'calm-2', 'sealed-0'], 'and passed it on to A')
  t.equal(stores.deliveries('site-b').find((d) => d.id === 'sealed-0')?.sealed, sealed.sealed, 'the sealed value stays sealed at B')
  const queried = await runFedvm(['monitor', 'query', '--config', fed.site('site-b').configFile, '--vm', VM, '--metric', LOAD])
  t.equal(queried.code, 0, queried.stderr)
  t.same(queried.json.deliveries.map((d: { value: number }) => d.value), [10, 20, 30], '`fedvm monitor query` at B answers for the VM')
  t.notOk(fed.daemon('site-b').events().some((e) => e.event === 'rule-fired'), 'calm values fire nothing')

  t.equal((await postIngest(ingest, [{ id: 'busy-0', vm: VM, metric: LOAD, format: 'processed', function: 'mean', from: now + 5000, to: now + 6000, value: 500 }])).status, 200)
  const fired = await fed.daemon('site-b').waitForEvent((e) => e.event === 'rule-fired', 30_000)
  t.match(fired, { rule: 'overloaded', vm: VM, action: 'forced-migration', value: 500 }, 'B\'s rule fired on data relayed through it')
  const done = await fed.daemon('site-b').waitForEvent((e) => e.event === 'rule-action-done' || e.event === 'rule-action-failed', 120_000)
  t.match(done, { event: 'rule-action-done', vm: VM, result: { outcome: 'migrated', destination: other, digestsAgree: true } }, 'B\'s Controller moved the VM')
  t.same(where(), [other], `the VM is at ${other} only`)
  const [host] = other === 'site-c' ? ['c1'] : ['e1']
  t.same(await digestsOf(join(fed.vmDir(other, host), VM)), digests, 'byte-exact')
  t.notOk(fed.daemon('site-a').events().some((e) => e.event === 'rule-fired'), 'A has no rule and fired nothing')
  t.same((await fed.cli('site-a', 'status')).json.locations, [{ vmId: VM, kind: 'partner', target: 'site-b', upstream: null }], 'A still delegates to B only')
})
