import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { seriesValue } from './support/agent-process'
import { AgentSetup, VM } from './support/agent-setup'
import { DeliveryReceiver } from './support/delivery-receiver'
import { waitFor } from '../support/wait'

// "SIGHUP reloads the config and descriptors without losing data; a changed
// specifier takes effect at once." A bad config or descriptor on SIGHUP is logged and the
// running set-up is kept. Real guestfs with its feed, the agent process, a real HTTP receiver.

const METRIC = 'kpi:users.current_users'
const RAW = { metric: METRIC, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const MAX = { ...RAW, format: 'processed', function: 'max' }
/** A window that never closes by itself within the test: only a reload that removes it delivers it. */
const LONG_MEDIAN = { ...RAW, deliveryIntervalMs: 3_600_000, format: 'processed', function: 'median' }

t.test('SIGHUP applies a changed descriptor at once; an invalid one is refused and the old one keeps running', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW, LONG_MEDIAN], consumers: [receiver.url] })
  const agent = await setup.startAgent()
  const rawValues = () => receiver.unique().filter((d) => d.format === 'raw').map((d) => d.samples![0].value)
  const processed = (fn: string) => receiver.unique().filter((d) => d.function === fn).map((d) => d.value)

  for (const value of [1, 5, 3]) t.equal(await setup.write('users', `current_users\n${value}\n`), 'ok')
  await waitFor('raw deliveries 1, 5, 3', () => rawValues().length === 3)
  t.strictSame(rawValues(), [1, 5, 3])
  t.strictSame(processed('max'), [], 'no max specifier yet')
  t.strictSame(processed('median'), [], 'the hour-long median window is still open')

  // A new function, and the long window removed: after SIGHUP both take effect without a restart.
  await setup.writeDescriptor([RAW, MAX])
  agent.signal('SIGHUP')
  await agent.waitForLog(/agent: configuration reloaded/)
  await waitFor('the removed window to be delivered', () => processed('median').length === 1)
  t.strictSame(processed('median'), [3], 'the median of 1, 5, 3: delivered when its specifier went away')
  t.equal(await setup.write('users', 'current_users\n7\n'), 'ok')
  await waitFor('the new specifier\'s first delivery', () => processed('max').length === 1)
  t.strictSame(processed('max'), [7], 'the new max specifier runs at once')
  await waitFor('/metrics to show the processed value', async () => seriesValue(await agent.metrics(), 'fedvm_kpi_processed', { domain: VM, metric: METRIC, function: 'max' }) === 7)

  // An invalid descriptor: refused with the field named; the running specifiers stay.
  await setup.writeDescriptor([RAW, { ...MAX, function: 'avg' }])
  agent.signal('SIGHUP')
  const [refusal] = await agent.waitForLog(/agent: reload refused/)
  t.match(refusal, /keeping the running configuration: .*monitoring\[1\]\.function: /)
  t.equal(await setup.write('users', 'current_users\n8\n'), 'ok')
  await waitFor('deliveries of 8 by both running specifiers', () => processed('max').length === 2 && rawValues().length === 5)
  t.strictSame(processed('max'), [7, 8])

  // An invalid config (and then unreadable JSON) on SIGHUP: the same.
  await setup.writeConfig({ vms: [{ name: VM, descriptor: `${VM}.json`, feed: 'tcp:127.0.0.1:1' }] })
  agent.signal('SIGHUP')
  await agent.waitForLog(/agent: reload refused.*vms\[0\]\.feed: /)
  await writeFile(setup.configFile, '{ "listen": ')
  agent.signal('SIGHUP')
  await agent.waitForLog(/agent: reload refused/, 3)
  t.equal(await setup.write('users', 'current_users\n9\n'), 'ok')
  await waitFor('delivery of 9', () => rawValues().length === 6)
  t.strictSame(rawValues(), [1, 5, 3, 7, 8, 9], 'every row delivered once, in order, across the reloads')
  t.strictSame(processed('max'), [7, 8, 9])
  t.ok(agent.running, 'the agent never stopped')
  t.equal(setup.agents.length, 1, 'one agent process throughout')
})
