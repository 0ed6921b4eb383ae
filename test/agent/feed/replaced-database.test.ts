import { rm } from 'node:fs/promises'
import t from 'tap'
import { AgentSetup } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { waitFor } from '../../support/wait'

// Contract 2 says nothing is lost; a guest whose KPI database is replaced (a new disk, a reinstalled
// VM) starts its row sequence over. Each database has an epoch, sent with the feed: the agent notices
// the new one, follows it from its first row, and its deliveries get ids that cannot collide with the
// old database's (a receiver de-duplicating by id would otherwise drop them).

const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }

t.test('a replaced guest database is followed from its first row, with fresh delivery ids', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url] })
  const mount = setup.mount!
  await setup.startAgent()
  const values = () => receiver.unique().filter((d) => d.metric === RAW.metric).map((d) => d.samples![0].value)

  for (let i = 1; i <= 5; i++) t.equal(await setup.write('k', `v\n${i}\n`), 'ok')
  await waitFor('the first database\'s 5 rows', () => values().length >= 5, 20_000)

  t.same(await mount.signal('SIGTERM'), { code: 0, signal: null }, 'guestfs stopped')
  for (const suffix of ['', '-wal', '-shm']) await rm(mount.dbFile + suffix, { force: true })
  await mount.start(setup.guestfsArgs) // a new, empty database: its rows are numbered from 1 again
  for (let i = 101; i <= 103; i++) t.equal(await setup.write('k', `v\n${i}\n`), 'ok')

  await waitFor('the new database\'s 3 rows', () => values().length >= 8, 20_000)
  t.same(values(), [1, 2, 3, 4, 5, 101, 102, 103], 'every row of both databases, once, in order')
  t.equal(setup.cursor(), 3n, 'the cursor follows the new database')
  t.match(setup.agentLog(), /KPI database changed \(epoch [0-9a-f]+ → [0-9a-f]+\)/, 'the agent says why it started over')
})
