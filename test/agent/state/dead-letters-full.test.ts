import t from 'tap'
import { seriesValue } from '../support/agent-process'
import { AgentSetup } from '../support/agent-setup'
import { FakeGuest } from '../support/fake-feed-peers'
import { SiteIngest } from '../support/site-ingest'
import { TinyFs, tinyFsUnavailable } from '../support/tiny-fs'
import { waitFor } from '../../support/wait'

// The dead-letter store is in the agent's stateDir, here on a real filesystem that runs out of
// space just as a refusal comes back: the agent stays up, says why (SQLite's code for the full
// disk) and keeps the refused delivery in its outbox; once there is space, it sets it aside.

const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const EPOCH = 'abcdefabcdefabcd'
const stats = (hello: unknown) => JSON.stringify({ v: 1, t: 'stats', committed: 0, refused: 0, last: '0', epoch: EPOCH, acked: '0', hello }) + '\n'
const row = (seq: number, ts: number) => JSON.stringify({ v: 1, t: 'row', seq: String(seq), kpi: 'k', ts, cols: ['v'], vals: [seq] }) + '\n'

t.test('a full disk when a delivery is to be set aside: no crash, the reason logged, set aside once space returns', { skip: tinyFsUnavailable() }, async (t) => {
  const tiny = await TinyFs.mount(t, 2048)
  const site = await SiteIngest.start(t, 'web-1')
  const setup = await AgentSetup.create(t, { monitoring: [RAW], guestfs: false })
  await setup.writeConfig({ stateDir: `${tiny.path}/state`, consumers: [{ type: 'http', url: site.url }] })
  const guest = await FakeGuest.listen(t, setup.feedPath)
  const agent = await setup.startAgent()
  const metric = async (name: string, labels: Record<string, string> = { consumer: site.url }) => seriesValue(await agent.metrics(), name, labels)
  const context = () => agent.log().split('\n').slice(-10).join('\n')
  const connection = await guest.next()
  connection.write(stats((await connection.line(0)).id))

  site.closed = true
  const now = Date.now()
  connection.write(row(1, now) + row(2, now + 3600_000))
  await waitFor('a 503 for both deliveries', () => site.requests.some((r) => r.status === 503 && r.ids.length === 2), 15_000, 25, context)
  t.comment(`the filler took ${tiny.fill()} bytes`)
  site.closed = false

  await waitFor('a failed dead-letter write counted', async () => ((await metric('fedvm_agent_storage_errors_total', { op: 'deadletter' })) ?? 0) > 0, 20_000, 50, context)
  // The log names the first write that failed (the outbox's may come before the dead letter's) and SQLite's code.
  t.match(agent.log(), /agent: storage: [a-z]+ write failed \((SQLITE_FULL|SQLITE_IOERR)[^)]*\)/, 'the log says why, with SQLite\'s code')
  t.ok(agent.running, 'the agent is still running')
  t.equal(await metric('fedvm_delivery_dead_letter_length'), 0, 'nothing set aside')
  t.equal(agent.lines(/refused for good/).length, 0, 'nor logged as set aside')
  const [good, bad] = site.requests.find((r) => r.ids.length === 2)!.ids
  t.same(site.stored(), [good], 'the good delivery reached the site')

  tiny.free()
  await waitFor('the refused delivery set aside', async () => (await metric('fedvm_delivery_dead_letter_length')) === 1, 20_000, 50, context)
  await waitFor('an empty outbox', async () => (await metric('fedvm_delivery_queue_length')) === 0, 10_000, 50, context)
  t.equal(await metric('fedvm_delivery_dead_lettered_total', { consumer: site.url, reason: 'bad-request' }), 1, 'counted once')
  t.equal(agent.lines(/refused for good/).length, 1, 'logged once')
  t.match(agent.lines(/refused for good/)[0], bad)
  t.same(site.stored(), [good], 'the good one stored once, the refused one never')
  await agent.waitForLog(/agent: storage: writes succeed again/)
})
