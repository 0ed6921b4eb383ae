import t from 'tap'
import { AgentSetup } from '../support/agent-setup'
import { SiteIngest } from '../support/site-ingest'
import { waitFor } from '../../support/wait'
import { GuestFedAgent, RAW, rowLine as row } from './support/dead-letter-agent'

// The real agent (`fedvm agent run`) posts to a site's real ingest that does not place the VM on
// this host yet (404 unknown-vm): such deliveries are retried for deadLetters.unplacedAfterMs, then
// set aside. A SIGHUP with a changed deadLetters section applies it to the running agent: a
// shortened unplacedAfterMs sets the waiting delivery aside at its next refusal, a lowered maxRows
// drops the oldest entries at once, an invalid value is refused naming the field. One process.

const HOUR = 3600_000

t.test('SIGHUP applies a changed deadLetters section to the running agent', async (t) => {
  const site = await SiteIngest.start(t, 'web-1')
  site.placed = false
  const setup = await AgentSetup.create(t, { monitoring: [RAW], guestfs: false })
  const config = (deadLetters: Record<string, unknown>) => setup.writeConfig({ consumers: [{ type: 'http', url: site.url }], deadLetters })
  await config({ unplacedAfterMs: HOUR, maxRows: 10 })
  const fed = await GuestFedAgent.start(t, setup, site.url)

  await t.test('a shortened unplacedAfterMs: the delivery waiting under the old hour is set aside at its next refusal', async (t) => {
    fed.connection.write(row(1, Date.now()))
    await waitFor('two 404s', () => site.requests.filter((r) => r.status === 404).length >= 2, 10_000, 25, fed.context)
    t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 0, 'retried under the hour-long bound')
    await config({ unplacedAfterMs: 1000, maxRows: 10 })
    fed.agent.signal('SIGHUP')
    const [changed] = await fed.agent.waitForLog(/agent: deadLetters changed/)
    t.match(changed, /unplacedAfterMs 3600000 → 1000/)
    t.notMatch(changed, /maxRows/, 'only what changed is named')
    await fed.agent.waitForLog(/agent: configuration reloaded/)
    await waitFor('the delivery set aside', async () => (await fed.metric('fedvm_delivery_dead_letter_length')) === 1, 15_000, 50, fed.context)
    t.equal(await fed.metric('fedvm_delivery_queue_length'), 0)
    t.match(fed.agent.lines(/refused for good/)[0], /HTTP 404 unknown-vm/)
  })

  await t.test('a lowered maxRows: the oldest entries dropped at once, logged', async (t) => {
    fed.connection.write(row(2, Date.now()) + row(3, Date.now() + 1))
    await waitFor('three set aside', async () => (await fed.metric('fedvm_delivery_dead_letter_length')) === 3, 15_000, 50, fed.context)
    await config({ unplacedAfterMs: 1000, maxRows: 1 })
    fed.agent.signal('SIGHUP')
    const [dropped] = await fed.agent.waitForLog(/dead-letter store dropped/)
    t.match(dropped, /dropped 2 old entries \(past the new deadLetters\.maxRows or maxAgeMs\)/)
    t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 1)
    const letters = await fed.deadLetters()
    t.same(letters.map((l) => l.delivery.samples[0].value), [3], 'the newest kept')
  })

  await t.test('an invalid value is refused naming the field; the bounds in force stay', async (t) => {
    await config({ unplacedAfterMs: 1000, maxRows: 0 })
    fed.agent.signal('SIGHUP')
    const [refused] = await fed.agent.waitForLog(/agent: reload refused/)
    t.match(refused, /deadLetters\.maxRows/)
    fed.connection.write(row(4, Date.now()))
    await fed.agent.waitForLog(/refused for good/, 3, 15_000)
    const [made] = await fed.agent.waitForLog(/consumer .*: the dead-letter store dropped/)
    t.match(made, /dropped 1 old entry/, 'maxRows 1 still holds: row 3 made room')
    // The listing reads the config too: a valid one again (no SIGHUP: the agent never sees it).
    await config({ unplacedAfterMs: 1000, maxRows: 1 })
    t.same((await fed.deadLetters()).map((l) => l.delivery.samples[0].value), [4])
    t.equal(setup.agents.length, 1, 'one agent process throughout')
    t.ok(fed.agent.running)
  })
})
