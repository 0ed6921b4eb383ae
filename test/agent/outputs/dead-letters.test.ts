import t from 'tap'
import { AgentSetup } from '../support/agent-setup'
import { SiteIngest } from '../support/site-ingest'
import { waitFor } from '../../support/wait'
import { GuestFedAgent, RAW, rowLine as row } from './support/dead-letter-agent'

// The real agent (`fedvm agent run`) posts to a site's real ingest (relay, primary store) through
// a gate that answers 503 while closed. The guest is played by the test so it can commit a row
// whose time is an hour ahead (a guest clock gone wrong), which every site refuses for good: that
// delivery is set aside in the dead-letter store, counted and logged, and the rows around it and
// after it are delivered. 503s are retried until the site answers. A restart keeps the store.

const HOUR = 3600_000

t.test('a refused delivery goes to the dead-letter store; the others, and the rows after it, are delivered', async (t) => {
  const site = await SiteIngest.start(t, 'web-1')
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [site.url], guestfs: false })
  const consumer = { consumer: site.url }
  const fed = await GuestFedAgent.start(t, setup, site.url)

  await t.test('503: kept and retried, then one batch: the future-dated delivery set aside, the two beside it stored', async (t) => {
    site.closed = true
    const now = Date.now()
    fed.connection.write(row(1, now) + row(2, now + HOUR) + row(3, now + 1))
    await waitFor('two 503s for the three deliveries', () => site.requests.filter((r) => r.status === 503 && r.ids.length === 3).length >= 2, 15_000, 25, fed.context)
    t.equal(await fed.metric('fedvm_delivery_queue_length'), 3, 'all three wait in the outbox')
    t.match(fed.agent.log(), /delivery failed \(HTTP 503\); kept in the outbox, retrying with backoff/)
    t.same(site.stored(), [])

    const before = site.requests.length
    site.closed = false
    await waitFor('rows 1 and 3 stored', () => site.stored().length === 2, 15_000, 25, fed.context)
    await waitFor('an empty outbox', async () => (await fed.metric('fedvm_delivery_queue_length')) === 0, 10_000, 25, fed.context)
    const after = site.requests.slice(before)
    const [one, two, three] = site.requests.find((r) => r.ids.length === 3)!.ids
    t.same(after.map((r) => ({ ids: r.ids, status: r.status })), [{ ids: [one, two, three], status: 400 }, { ids: [one, three], status: 200 }],
      'the ingest named the refused delivery; the agent sent the other two again at once, without it')
    t.same(site.stored(), [one, three])
    t.equal(await fed.metric('fedvm_delivery_dead_lettered_total', { ...consumer, reason: 'bad-request' }), 1, 'counted by reason')
    t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 1)
    const line = fed.agent.lines(/refused for good/)
    t.equal(line.length, 1, 'one log line')
    t.match(line[0], new RegExp(`1 delivery refused for good \\(HTTP 400 bad-request: deliveries\\[1\\]\\.to: data time .* ahead of this site's clock; at most 60 s is allowed\\); moved to the dead-letter store \\(${two}\\)`))
    t.notMatch(line[0], /"value"|"samples":\[/, 'no payload in the log')

    const letters = await fed.deadLetters()
    t.equal(letters.length, 1)
    t.match(letters[0], { id: two, vm: 'web-1', consumer: site.url, status: 400, code: 'bad-request', detail: /^deliveries\[1\]\.to: data time/, delivery: { id: two, samples: [{ ts: now + HOUR, value: 2 }] } })
  })

  await t.test('a good row written after it is delivered', async (t) => {
    const before = site.requests.length
    fed.connection.write(row(4, Date.now()))
    await waitFor('row 4 stored', () => site.stored().length === 3, 10_000, 25, fed.context)
    t.same(site.requests.slice(before).map((r) => r.status), [200], 'one POST, accepted')
  })

  await t.test('an agent restart keeps the dead-letter store and does not send it again', async (t) => {
    await fed.agent.stop()
    const stored = site.stored().length
    await fed.restart(4)
    const before = site.requests.length
    t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 1, 'still in the store after the restart')
    t.equal(await fed.metric('fedvm_delivery_dead_lettered_total', { ...consumer, reason: 'bad-request' }), undefined, 'the counter is this process\'s own')
    fed.connection.write(row(5, Date.now()))
    await waitFor('row 5 stored', () => site.stored().length === stored + 1, 10_000, 25, fed.context)
    // The outbox sends in queue order: had the refused delivery gone back to it, it would have gone before row 5.
    const dead = (await fed.deadLetters())[0].id as string
    t.notOk(site.requests.slice(before).some((r) => r.ids.includes(dead)), 'the set-aside delivery is not sent again')
    t.same(site.requests.slice(before).map((r) => r.status), [200])
    t.equal((await fed.deadLetters()).length, 1)
  })

  await t.test('a receiver that refuses a batch without naming the delivery: the batch is split until the one it refuses is found', async (t) => {
    site.closed = true
    site.refuseWhole = (ids) => ids.some((id) => id.endsWith('.7'))
    const before = site.requests.length
    const now = Date.now()
    fed.connection.write(row(6, now) + row(7, now + 1) + row(8, now + 2) + row(9, now + 3))
    await waitFor('a 503 for the four deliveries', () => site.requests.slice(before).some((r) => r.status === 503 && r.ids.length === 4), 15_000, 25, fed.context)
    const opened = site.requests.length
    site.closed = false
    await waitFor('rows 6, 8 and 9 stored', () => ['.6', '.8', '.9'].every((n) => site.stored().some((id) => id.endsWith(n))), 15_000, 25, fed.context)
    await waitFor('an empty outbox', async () => (await fed.metric('fedvm_delivery_queue_length')) === 0, 10_000, 25, fed.context)
    const seqs = (r: { ids: string[] }) => r.ids.map((id) => Number(id.slice(id.lastIndexOf('.') + 1)))
    t.same(site.requests.slice(opened).map((r) => [seqs(r), r.status]), [[[6, 7, 8, 9], 400], [[6, 7], 400], [[6], 200], [[7], 400], [[8, 9], 200]], 'halves until the refused one is alone')
    t.notOk(site.stored().some((id) => id.endsWith('.7')))
    const letters = await fed.deadLetters()
    t.same(letters.map((l) => l.id.slice(l.id.lastIndexOf('.') + 1)), ['2', '7'], 'set aside beside the first one, oldest first')
    t.match(letters[1], { status: 400, code: 'bad-request', detail: 'a delivery is bad' })
    t.equal(await fed.metric('fedvm_delivery_dead_lettered_total', { ...consumer, reason: 'bad-request' }), 1)
    site.refuseWhole = undefined
  })

  await t.test('refused for where its VM is (the site\'s records lag a migration): retried, never set aside, delivered once placed', async (t) => {
    site.placed = false
    const before = site.requests.length
    fed.connection.write(row(10, Date.now()))
    await waitFor('two 404s', () => site.requests.slice(before).filter((r) => r.status === 404).length >= 2, 15_000, 25, fed.context)
    t.equal(await fed.metric('fedvm_delivery_queue_length'), 1, 'kept in the outbox')
    t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 2, 'not set aside')
    site.placed = true
    await waitFor('row 10 stored', () => site.stored().some((id) => id.endsWith('.10')), 15_000, 25, fed.context)
    t.equal(await fed.metric('fedvm_delivery_queue_length'), 0)
    t.equal((await fed.deadLetters()).length, 2)
  })
})

t.test('refused for where its VM is for longer than deadLetters.unplacedAfterMs: set aside', async (t) => {
  const site = await SiteIngest.start(t, 'web-1')
  site.placed = false
  const setup = await AgentSetup.create(t, { monitoring: [RAW], guestfs: false })
  await setup.writeConfig({ consumers: [{ type: 'http', url: site.url }], deadLetters: { unplacedAfterMs: 5000 } })
  const fed = await GuestFedAgent.start(t, setup, site.url)

  const queued = Date.now()
  fed.connection.write(row(1, queued))
  await waitFor('a 404', () => site.requests.some((r) => r.status === 404), 10_000, 25, fed.context)
  t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 0, 'retried at first')
  await waitFor('the delivery set aside', async () => (await fed.metric('fedvm_delivery_dead_letter_length')) === 1, 30_000, 50, fed.context)
  t.ok(Date.now() - queued >= 5000, 'not before unplacedAfterMs')
  t.ok(site.requests.filter((r) => r.status === 404).length >= 2, 'after being retried')
  t.equal(await fed.metric('fedvm_delivery_dead_lettered_total', { consumer: site.url, reason: 'unknown-vm' }), 1, 'counted under the site\'s code')
  t.equal(await fed.metric('fedvm_delivery_queue_length'), 0)
  t.match(fed.agent.lines(/refused for good/)[0], /HTTP 404 unknown-vm: deliveries\[0\]\.vm: this site is not responsible for web-1/)
})
