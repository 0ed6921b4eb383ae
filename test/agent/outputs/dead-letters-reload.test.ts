import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { seriesValue } from '../support/agent-process'
import { AgentSetup } from '../support/agent-setup'
import { FakeGuest } from '../support/fake-feed-peers'
import { SiteIngest } from '../support/site-ingest'
import { FEDVM_JS } from '../../support/dist-paths'
import { waitFor } from '../../support/wait'

// The real agent (`fedvm agent run`) posts to a site's real ingest that does not place the VM on
// this host yet (404 unknown-vm): such deliveries are retried for deadLetters.unplacedAfterMs, then
// set aside. A SIGHUP with a changed deadLetters section applies it to the running agent: a
// shortened unplacedAfterMs sets the waiting delivery aside at its next refusal, a lowered maxRows
// drops the oldest entries at once, an invalid value is refused naming the field. One process.

const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const EPOCH = 'abcdefabcdefabcd'
const HOUR = 3600_000
const run = promisify(execFile)

const stats = (last: number, hello: unknown) => JSON.stringify({ v: 1, t: 'stats', committed: last, refused: 0, last: String(last), epoch: EPOCH, acked: '0', hello }) + '\n'
const row = (seq: number, ts: number) => JSON.stringify({ v: 1, t: 'row', seq: String(seq), kpi: 'k', ts, cols: ['v'], vals: [seq] }) + '\n'

t.test('SIGHUP applies a changed deadLetters section to the running agent', async (t) => {
  const site = await SiteIngest.start(t, 'web-1')
  site.placed = false
  const setup = await AgentSetup.create(t, { monitoring: [RAW], guestfs: false })
  const config = (deadLetters: Record<string, unknown>) => setup.writeConfig({ consumers: [{ type: 'http', url: site.url }], deadLetters })
  await config({ unplacedAfterMs: HOUR, maxRows: 10 })
  const guest = await FakeGuest.listen(t, setup.feedPath)
  const agent = await setup.startAgent()
  const metric = async (name: string) => seriesValue(await agent.metrics(), name, { consumer: site.url })
  const context = () => agent.log().split('\n').slice(-10).join('\n')
  const deadLetters = async () => (await run(process.execPath, [FEDVM_JS(), 'agent', 'dead-letters', '--config', setup.configFile])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>)
  const connection = await guest.next()
  connection.write(stats(0, (await connection.line(0)).id))

  await t.test('a shortened unplacedAfterMs: the delivery waiting under the old hour is set aside at its next refusal', async (t) => {
    connection.write(row(1, Date.now()))
    await waitFor('two 404s', () => site.requests.filter((r) => r.status === 404).length >= 2, 10_000, 25, context)
    t.equal(await metric('fedvm_delivery_dead_letter_length'), 0, 'retried under the hour-long bound')
    await config({ unplacedAfterMs: 1000, maxRows: 10 })
    agent.signal('SIGHUP')
    const [changed] = await agent.waitForLog(/agent: deadLetters changed/)
    t.match(changed, /unplacedAfterMs 3600000 → 1000/)
    t.notMatch(changed, /maxRows/, 'only what changed is named')
    await agent.waitForLog(/agent: configuration reloaded/)
    await waitFor('the delivery set aside', async () => (await metric('fedvm_delivery_dead_letter_length')) === 1, 15_000, 50, context)
    t.equal(await metric('fedvm_delivery_queue_length'), 0)
    t.match(agent.lines(/refused for good/)[0], /HTTP 404 unknown-vm/)
  })

  await t.test('a lowered maxRows: the oldest entries dropped at once, logged', async (t) => {
    connection.write(row(2, Date.now()) + row(3, Date.now() + 1))
    await waitFor('three set aside', async () => (await metric('fedvm_delivery_dead_letter_length')) === 3, 15_000, 50, context)
    await config({ unplacedAfterMs: 1000, maxRows: 1 })
    agent.signal('SIGHUP')
    const [dropped] = await agent.waitForLog(/dead-letter store dropped/)
    t.match(dropped, /dropped 2 old entries \(past the new deadLetters\.maxRows or maxAgeMs\)/)
    t.equal(await metric('fedvm_delivery_dead_letter_length'), 1)
    const letters = await deadLetters()
    t.same(letters.map((l) => l.delivery.samples[0].value), [3], 'the newest kept')
  })

  await t.test('an invalid value is refused naming the field; the bounds in force stay', async (t) => {
    await config({ unplacedAfterMs: 1000, maxRows: 0 })
    agent.signal('SIGHUP')
    const [refused] = await agent.waitForLog(/agent: reload refused/)
    t.match(refused, /deadLetters\.maxRows/)
    connection.write(row(4, Date.now()))
    await agent.waitForLog(/refused for good/, 3, 15_000)
    const [made] = await agent.waitForLog(/consumer .*: the dead-letter store dropped/)
    t.match(made, /dropped 1 old entry/, 'maxRows 1 still holds: row 3 made room')
    // The listing reads the config too: a valid one again (no SIGHUP: the agent never sees it).
    await config({ unplacedAfterMs: 1000, maxRows: 1 })
    t.same((await deadLetters()).map((l) => l.delivery.samples[0].value), [4])
    t.equal(setup.agents.length, 1, 'one agent process throughout')
    t.ok(agent.running)
  })
})
