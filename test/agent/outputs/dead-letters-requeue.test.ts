import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { decodeKey } from '../../../protocol/crypto/key-files'
import { writeHostKeyPair } from '../../../protocol/crypto/host-key'
import { AgentSetup } from '../support/agent-setup'
import { SiteIngest } from '../support/site-ingest'
import { waitFor } from '../../support/wait'
import { deadLettersCommand, GuestFedAgent, RAW, rowLine as row } from './support/dead-letter-agent'

// The real agent (`fedvm agent run`, signing as host h1) posts to a site's real ingest, which checks
// host signatures. At first the site does not know h1's key: every POST is a 401, which the agent
// retries, says once in its log and in /metrics, and sets aside once the delivery has waited
// deadLetters.unauthenticatedAfterMs. The operator adds the key at the site and requeues with
// `fedvm agent dead-letters --requeue` beside the running agent, then once more while it is stopped.

const BOUND_MS = 3000
const seqOf = (id: string) => Number(id.slice(id.lastIndexOf('.') + 1))

t.test('a site that refuses the host\'s signature: retried visibly, set aside after the bound, requeued once the key is known', async (t) => {
  const site = await SiteIngest.start(t, 'web-1', 60_000, { hostAuth: true })
  const setup = await AgentSetup.create(t, { monitoring: [RAW], guestfs: false })
  const keys = join(setup.dir, 'keys')
  await mkdir(keys)
  const publicKey = decodeKey('h1', await writeHostKeyPair(keys))
  await setup.writeConfig({ consumers: [{ type: 'http', url: site.url, host: 'h1', hostKey: 'keys/host.key' }], deadLetters: { unauthenticatedAfterMs: BOUND_MS } })
  const fed = await GuestFedAgent.start(t, setup, site.url)
  const consumer = { consumer: site.url }
  const fedvm = (...args: string[]) => deadLettersCommand(setup.configFile, ...args)

  await t.test('401s: kept and retried, said once in the log and in /metrics; set aside once the bound has passed', async (t) => {
    const queued = Date.now()
    fed.connection.write(row(1, queued))
    await waitFor('three 401s', () => site.requests.filter((r) => r.status === 401).length >= 3, 15_000, 25, fed.context)
    t.equal(await fed.metric('fedvm_delivery_signature_refused'), 1, 'the gauge says the site refuses the signature now')
    t.ok((await fed.metric('fedvm_delivery_signature_refusals_total', { ...consumer, code: 'unknown-sender' }))! >= 3, 'each 401 counted under the site\'s code')
    if (Date.now() - queued < BOUND_MS) t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 0, 'not set aside before the bound')
    const said = fed.agent.lines(/refuses the signature of host h1/)
    t.equal(said.length, 1, 'said once, not at every 401')
    t.match(said[0], /HTTP 401 unknown-sender: .*deadLetters\.unauthenticatedAfterMs/)

    await waitFor('the delivery set aside', async () => (await fed.metric('fedvm_delivery_dead_letter_length')) === 1, 20_000, 50, fed.context)
    t.ok(Date.now() - queued >= BOUND_MS, 'not before unauthenticatedAfterMs')
    t.equal(await fed.metric('fedvm_delivery_dead_lettered_total', { ...consumer, reason: 'unknown-sender' }), 1, 'counted under the site\'s code')
    t.equal(await fed.metric('fedvm_delivery_queue_length'), 0)
    const letters = await fed.deadLetters()
    t.match(letters, [{ seq: Number, status: 401, code: 'unknown-sender', delivery: { samples: [{ value: 1 }] } }])
    t.same(site.stored(), [])
  })

  await t.test('the site learns the key: new rows go at once, the gauge drops, the log says so', async (t) => {
    site.hostKeys.set('h1', publicKey)
    fed.connection.write(row(2, Date.now()))
    await waitFor('row 2 stored', () => site.stored().some((id) => seqOf(id) === 2), 15_000, 25, fed.context)
    await fed.agent.waitForLog(/the site accepts this host's signature again/)
    t.equal(await fed.metric('fedvm_delivery_signature_refused'), 0)
    t.equal((await fed.deadLetters()).length, 1, 'the set-aside delivery stays there until requeued')
  })

  await t.test('requeue beside the running agent: moved in one step, sent, gone from the store', async (t) => {
    await t.rejects(fedvm('--requeue'), { code: 2, stderr: /--requeue needs --id N \(repeatable\) or --all/ }, 'a selection is required')
    await t.rejects(fedvm('--requeue', '--id', '999'), { code: 1, stderr: /no dead letter 999 to requeue/ }, 'an unknown id is an error')
    await t.rejects(fedvm('--requeue', '--all', '--reason', 'unknown-sender', '--consumer', 'nope'), { code: 1, stderr: /--consumer nope: the config has no such consumer/ })
    t.same(await fed.deadLetters('--requeue', '--all', '--reason', 'bad-request'), [], 'another reason: nothing moved')
    const [letter] = await fed.deadLetters()
    const before = site.requests.length
    const moved = await fed.deadLetters('--requeue', '--all', '--reason', 'unknown-sender')
    t.match(moved, [{ requeued: letter.seq, consumer: site.url, id: letter.id, code: 'unknown-sender' }])
    await waitFor('the requeued delivery stored', () => site.stored().includes(letter.id), 10_000, 25, fed.context)
    t.same(site.requests.slice(before).filter((r) => r.ids.includes(letter.id)).map((r) => r.status), [200], 'sent once, accepted')
    t.same(await fed.deadLetters(), [])
    t.equal(await fed.metric('fedvm_delivery_dead_letter_length'), 0)
  })

  await t.test('requeue while the agent is stopped: in the outbox, never in both tables; sent at the next start', async (t) => {
    site.refuseWhole = (ids) => ids.some((id) => seqOf(id) === 3)
    fed.connection.write(row(3, Date.now()))
    await waitFor('row 3 set aside', async () => (await fed.metric('fedvm_delivery_dead_letter_length')) === 1, 10_000, 25, fed.context)
    site.refuseWhole = undefined
    await fed.agent.stop()
    const [letter] = await fed.deadLetters()
    await t.rejects(fedvm('--requeue', '--id', String(letter.seq), '--id', '998'), { code: 1, stderr: /no dead letter 998/ }, 'one unknown id moves none of the others')
    t.equal((await fed.deadLetters()).length, 1)
    t.match(await fed.deadLetters('--requeue', '--id', String(letter.seq)), [{ requeued: letter.seq, id: letter.id }])
    const db = new Database(setup.stateDb, { readonly: true })
    t.equal(db.prepare('SELECT count(*) FROM outbox WHERE id = ?').pluck().get(letter.id), 1, 'in the outbox')
    t.equal(db.prepare('SELECT count(*) FROM dead_letters WHERE id = ?').pluck().get(letter.id), 0, 'not in the store')
    db.close()
    await fed.restart(3)
    await waitFor('the requeued delivery stored', () => site.stored().includes(letter.id), 10_000, 25, fed.context)
    t.equal(await fed.metric('fedvm_delivery_queue_length'), 0)
  })
})
