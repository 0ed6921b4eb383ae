import t from 'tap'
import Database from 'better-sqlite3'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentSetup, VM } from '../agent/support/agent-setup'
import { waitFor } from '../support/wait'
import { Federation } from '../protocol/support/federation'
import { runFedvm } from '../protocol/support/fedvm-process'
import { MonitoringStores } from '../protocol/support/monitoring-stores'
import { post, signAs } from '../protocol/support/signed-client'
import { makeVmDir } from '../protocol/support/vm-files'

// The paper's Control interface: A (the primary) placed web-1 through B at C, whose agent follows the
// VM folder. An update from A travels A → B → C, C's host rewrites the descriptor, the agent applies the
// new specifier without a restart and its deliveries reach A. A stale version, an update from B (on the
// chain, policy "primary") and one from D (off the chain) are refused with nothing changed.

const USERS = 'kpi:users.current_users'
const ORDERS = 'kpi:orders.count'

t.test('descriptor updates and run-state changes travel down the chain of delegation', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.61', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [] }, monitoring: {} },
    { id: 'site-b', ip: '127.0.0.62', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' }, monitoring: {} },
    { id: 'site-c', ip: '127.0.0.63', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b', 'site-d'], policy: { delegate: false, expose: 'all', acceptFrom: ['site-b'] }, monitoring: { ingest: true } },
    { id: 'site-d', ip: '127.0.0.64', partners: ['site-c'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const stores = new MonitoringStores(fed)
  const ingest = `http://${(fed.site('site-c').config.monitoring as { ingest: string }).ingest}/v1/deliveries`
  const vmCli = async (site: string, sub: string, ...args: string[]) => {
    const raw = await runFedvm(['vm', sub, '--config', fed.site(site).configFile, '--vm', VM, ...args])
    return { code: raw.code, json: raw.json, raw }
  }

  // The VM's files: its descriptor (version 1, one specifier) and a domain.xml whose KPI channel is guestfs' feed socket.
  const usersRaw = { metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
  const setup = await AgentSetup.create(t, { monitoring: [usersRaw] })
  const descriptor = { id: VM, version: 1, primarySite: { id: 'site-a', publicKey: fed.site('site-a').keys.sealPublicKey }, monitoring: [usersRaw] }
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 128 * 1024 })
  await writeFile(join(image, 'descriptor.json'), JSON.stringify(descriptor))
  await writeFile(join(image, 'domain.xml'), `<domain type='kvm'><name>${VM}</name><devices><channel type='unix'><source mode='bind' path='${setup.feedPath}'/><target type='virtio' name='org.fedvm.kpi.0'/></channel></devices></domain>\n`)
  const descriptorFile = join(fed.root, 'descriptor.json')
  await writeFile(descriptorFile, JSON.stringify(descriptor))
  const placed = await fed.cli('site-a', 'place', '--vm', VM, '--dir', image, '--descriptor', descriptorFile)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 placed A → B → C')
  const atC = join(fed.vmDir('site-c', 'c1'), VM, 'descriptor.json')
  t.ok(existsSync(atC), 'the descriptor travelled with the VM\'s files')

  await setup.writeConfig({ vms: [], discover: { vmDir: fed.vmDir('site-c', 'c1'), intervalMs: 200 }, consumers: [{ type: 'http', url: ingest }] })
  const agent = await setup.startAgent()
  t.equal(await setup.write('users', 'current_users\n17\n'), 'ok')
  await waitFor('users at A', () => stores.deliveries('site-a').some((d) => d.metric === USERS), 60_000, 100, () => agent.log())

  const recorded = (site: string): any => {
    const db = new Database(join(fed.site(site).dir, 'state', 'site.db'), { readonly: true, fileMustExist: true })
    try {
      return JSON.parse((db.prepare('SELECT "descriptor" FROM "locations" WHERE "vm_id" = ?').pluck().get(VM) as string | undefined) ?? 'null')
    } finally {
      db.close()
    }
  }

  await t.test('an update from A reaches C\'s agent through B; the new specifier\'s deliveries arrive at A', async (t) => {
    const ordersRaw = { metric: ORDERS, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
    const patch = join(fed.root, 'patch.json')
    await writeFile(patch, JSON.stringify({ monitoring: [usersRaw, ordersRaw], resources: { memoryMiB: 512 } }))
    const updated = await vmCli('site-a', 'update', '--patch', patch)
    t.equal(updated.code, 0, updated.raw.stdout + updated.raw.stderr)
    t.match(updated.json, { outcome: 'applied', vmId: VM, version: 2, resources: { memoryMiB: { applied: false } } })
    const now = JSON.parse(readFileSync(atC, 'utf8'))
    t.match(now, { id: VM, version: 2, primarySite: { id: 'site-a' }, monitoring: [{ metric: USERS }, { metric: ORDERS }], resources: { memoryMiB: 512 } }, 'C\'s host holds the new descriptor')
    for (const site of ['site-a', 'site-b', 'site-c']) t.equal(recorded(site)?.version, 2, `${site} keeps the newest descriptor`)
    t.notOk(JSON.stringify(updated.json).includes('site-c'), 'A\'s answer never names site-c')

    // Discovery looks at the folder every 200 ms; a row committed before it applied version 2 would be read under version 1.
    await agent.waitForLog(/descriptor is applied \(version 2\)/, 1, 30_000)
    t.equal(await setup.write('orders', 'count\n4\n'), 'ok')
    const orders = await waitFor('orders at A', () => stores.deliveries('site-a').find((d) => d.metric === ORDERS), 60_000, 100, () => agent.log())
    t.same(orders.samples?.map((s) => s.value), [4], 'the new specifier delivers to the primary')
    t.equal(setup.agents.length, 1, 'one agent process all along')
    t.ok(agent.running, 'the agent was not restarted')
  })

  await t.test('a stale version, and updates from B (policy primary) and D (off the chain), change nothing', async (t) => {
    const before = readFileSync(atC, 'utf8')
    const patch = join(fed.root, 'patch-stale.json')
    await writeFile(patch, JSON.stringify({ monitoring: [] }))
    const stale = await vmCli('site-a', 'update', '--patch', patch, '--version', '2')
    t.equal(stale.code, 1)
    t.match(stale.json, { outcome: 'failed', code: 'stale-version' })
    const fromB = await vmCli('site-b', 'update', '--patch', patch, '--version', '3')
    t.equal(fromB.code, 1)
    t.match(fromB.json, { outcome: 'failed', code: 'not-permitted' })
    const fromD = await post(fed, 'site-c', 'descriptor-update', await signAs(fed, 'site-d', 'site-c', 'descriptor-update', { vmId: VM, version: 9, patch: { monitoring: [] } }))
    t.equal(fromD.status, 403)
    t.match(fromD.json, { code: 'not-permitted' })
    t.equal(readFileSync(atC, 'utf8'), before, 'C\'s descriptor is unchanged')
    for (const site of ['site-a', 'site-b', 'site-c']) t.equal(recorded(site)?.version, 2, `${site} still holds version 2`)
  })

  await t.test('specifiers the agent would refuse: refused at A naming the field, no version moves; the next update is version 3', async (t) => {
    const before = readFileSync(atC, 'utf8')
    const patch = join(fed.root, 'patch-invalid.json')
    await writeFile(patch, JSON.stringify({ monitoring: [usersRaw, { metric: ORDERS, monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed' }] }))
    const refused = await vmCli('site-a', 'update', '--patch', patch)
    t.equal(refused.code, 1)
    t.match(refused.json, { outcome: 'failed', code: 'bad-request', detail: /^patch\.monitoring\[1\]\.function: processed format needs a function/ }, refused.raw.stdout + refused.raw.stderr)
    t.equal(readFileSync(atC, 'utf8'), before, 'C\'s descriptor is unchanged')
    for (const site of ['site-a', 'site-b', 'site-c']) t.equal(recorded(site)?.version, 2, `${site} still holds version 2`)
    // Signed by B, C's neighbour, and sent straight to C (no check at A or B on the way): C refuses it the same way.
    const direct = await post(fed, 'site-c', 'descriptor-update', await signAs(fed, 'site-b', 'site-c', 'descriptor-update', { vmId: VM, version: 3, patch: { monitoring: [{ ...usersRaw, format: 'bogus' }] } }))
    t.equal(direct.status, 400)
    t.match(direct.json, { code: 'bad-request', detail: /^patch\.monitoring\[0\]\.format: / })
    t.equal(readFileSync(atC, 'utf8'), before)

    await writeFile(patch, JSON.stringify({ monitoring: [usersRaw, { metric: ORDERS, monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed', function: 'max' }] }))
    const fixed = await vmCli('site-a', 'update', '--patch', patch)
    t.match(fixed.json, { outcome: 'applied', version: 3 }, 'the corrected update takes the next version: the refused one used none')
    await agent.waitForLog(/descriptor is applied \(version 3\)/, 1, 30_000)
  })

  await t.test('run state: suspend, resume, shut down and start by the same route; a directory host records it', async (t) => {
    const stateFile = join(fed.vmDir('site-c', 'c1'), '.run-state', VM)
    const suspended = await vmCli('site-a', 'suspend')
    t.match(suspended.json, { outcome: 'done', action: 'suspend', state: 'paused' }, suspended.raw.stdout + suspended.raw.stderr)
    t.equal(readFileSync(stateFile, 'utf8').trim(), 'paused')
    const refused = await vmCli('site-a', 'start')
    t.match(refused.json, { outcome: 'failed', code: 'downstream-failed', downstreamCode: 'wrong-run-state' }, 'a paused VM is resumed, not started')
    t.match((await vmCli('site-a', 'resume')).json, { state: 'running' })
    t.match((await vmCli('site-a', 'shutdown')).json, { state: 'shut-off' })
    t.equal(readFileSync(stateFile, 'utf8').trim(), 'shut-off')
    t.match((await vmCli('site-a', 'start')).json, { state: 'running' })
    const fromD = await post(fed, 'site-c', 'run-state', await signAs(fed, 'site-d', 'site-c', 'run-state', { vmId: VM, action: 'shutdown' }))
    t.match(fromD.json, { code: 'not-permitted' })
    t.equal(readFileSync(stateFile, 'utf8').trim(), 'running')
  })
})
