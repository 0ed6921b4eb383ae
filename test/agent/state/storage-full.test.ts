import t from 'tap'
import { seriesValue } from '../support/agent-process'
import { AgentSetup, VM } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { TinyFs, tinyFsUnavailable } from '../support/tiny-fs'
import { waitFor } from '../../support/wait'

// No disk-full error may crash the agent: with its stateDir on a real filesystem that runs out of
// space, it refuses (the guest keeps what the agent could not store, the outbox keeps what it could
// not send), says so on /metrics and in its log, and recovers by itself when space returns. Each
// row is counted and delivered once, however often storing it was tried.

const RAW = { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const FULL_WRITES = 300

t.test('a full stateDir: the agent stays up, reports it, and delivers every row once when space returns', { skip: tinyFsUnavailable() }, async (t) => {
  const tiny = await TinyFs.mount(t, 2048)
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url] })
  await setup.writeConfig({ stateDir: `${tiny.path}/state`, consumers: [{ type: 'http', url: receiver.url }] })
  const agent = await setup.startAgent()
  const metric = async (name: string, labels: Record<string, string> = {}) => seriesValue(await agent.metrics(), name, labels)
  const writes = async () => metric('fedvm_kpi_writes_total', { domain: VM, kpi: 'users' })
  const write = async (from: number, to: number) => {
    for (let n = from; n <= to; n++) t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok', `row ${n} written`)
  }
  const context = () => agent.log().split('\n').slice(-15).join('\n')

  await write(1, 5)
  await waitFor('rows 1-5 at the receiver', () => receiver.unique().length === 5)
  t.equal(await metric('fedvm_agent_storage_up'), 1, 'storage up while writes succeed')

  // Deliveries wait in the outbox (the receiver is down) when the disk fills: their retry book-keeping writes too.
  await receiver.down()
  await write(6, 15)
  await waitFor('10 deliveries waiting', async () => (await metric('fedvm_delivery_queue_length', { consumer: receiver.url })) === 10)
  await agent.waitForLog(/delivery failed .*kept in the outbox/)
  t.comment(`the filler took ${tiny.fill()} bytes`)

  await write(16, 15 + FULL_WRITES)
  await waitFor('storage reported down', async () => (await metric('fedvm_agent_storage_up')) === 0, 20_000, 50, context)
  await waitFor('a failed outbox write counted', async () => ((await metric('fedvm_agent_storage_errors_total', { op: 'outbox' })) ?? 0) > 0, 20_000, 50, context)
  t.ok(((await metric('fedvm_agent_storage_errors_total', { op: 'ingest' })) ?? 0) > 0, 'failed feed batches counted')
  t.match(agent.log(), /agent: storage: .*(database or disk is full|SQLITE_FULL)/, 'the log says why')
  t.ok(agent.running, 'the agent is still running')
  // /metrics shows rows as they arrive; every retry to store them brings them again, and none counts twice.
  await waitFor('the rows written while full counted once', async () => (await writes()) === 15 + FULL_WRITES, 20_000, 50, context)
  await agent.waitForLog(/could not store rows/, 2)
  t.equal(await writes(), 15 + FULL_WRITES, 'still once after more tries to store them')

  tiny.free()
  await receiver.up()
  await waitFor(`all ${15 + FULL_WRITES} rows at the receiver`, () => receiver.unique().length >= 15 + FULL_WRITES, 90_000, 100, context)
  await waitFor('an empty outbox', async () => (await metric('fedvm_delivery_queue_length', { consumer: receiver.url })) === 0, 30_000, 50, context)
  const values = receiver.unique().map((d) => Number(d.samples![0].value)).sort((a, b) => a - b)
  t.strictSame(values, Array.from({ length: 15 + FULL_WRITES }, (_, i) => i + 1), 'every row exactly once (repeats only by id)')
  t.equal(await writes(), 15 + FULL_WRITES, 'each row counted once')
  t.equal(await metric('fedvm_agent_storage_up'), 1, 'storage up again')
  await agent.waitForLog(/agent: storage: writes succeed again/)
  t.ok(agent.running, 'the agent is still running')
})
