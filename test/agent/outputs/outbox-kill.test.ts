import t from 'tap'
import { seriesValue } from '../support/agent-process'
import { AgentSetup } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { sleep, waitFor } from '../../support/wait'

// "deliveries are written to a durable outbox … before they are sent; the http
// consumer POSTs them as JSON with an Idempotency-Key header, retries with backoff, and the
// receiver sees every delivery at least once and can drop repeats by key. A consumer that is
// down … loses nothing." Here the receiver refuses connections, the agent is SIGKILLed while
// deliveries wait, the receiver answers 503 for a while, and then recovers.

const RAW = { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }

t.test('receiver down (connection refused, agent killed meanwhile), then 503, then up: nothing lost, repeats only by id', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url] })
  let agent = await setup.startAgent()
  const queue = async () => seriesValue(await agent.metrics(), 'fedvm_delivery_queue_length', { consumer: receiver.url })
  const write = async (from: number, to: number) => {
    for (let n = from; n <= to; n++) t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok', `row ${n} written`)
  }

  await write(1, 10)
  await waitFor('rows 1-10 at the receiver', () => receiver.unique().length === 10)
  t.equal(await queue(), 0, 'nothing waiting while the receiver is up')

  await receiver.down()
  const downAt = Date.now()
  await write(11, 30)
  await waitFor('20 deliveries waiting in the outbox', async () => (await queue()) === 20)
  await agent.waitForLog(/consumer .*: delivery failed \(.*ECONNREFUSED.*\); kept in the outbox/)

  // The agent dies with deliveries waiting; the next one finds them in its outbox.
  await agent.kill()
  agent = await setup.startAgent()
  await write(31, 40)
  await waitFor('30 deliveries waiting after the restart', async () => (await queue()) === 30)
  await sleep(Math.max(0, 2500 - (Date.now() - downAt)))

  receiver.failWith = 503
  await receiver.up()
  t.comment(`receiver refused connections for ${Date.now() - downAt} ms`)
  await waitFor('a POST answered with 503', () => receiver.rejected > 0, 20_000)
  t.equal(receiver.unique().length, 10, 'a 503 is not an acknowledgement')
  t.equal(await queue(), 30, 'the deliveries stay in the outbox')
  receiver.failWith = undefined

  await waitFor('all 40 rows at the receiver', () => receiver.unique().length === 40, 40_000)
  await waitFor('an empty outbox', async () => (await queue()) === 0)
  await sleep(300)
  const values = receiver.unique().map((d) => d.samples![0].value).sort((a, b) => Number(a) - Number(b))
  t.strictSame(values, Array.from({ length: 40 }, (_, i) => i + 1), 'every row exactly once after dropping repeats by id')
  t.comment(`${receiver.posts.length} POSTs, ${receiver.all().length} deliveries received, ${receiver.unique().length} unique, ${receiver.rejected} answered 503`)
  for (const post of receiver.posts) {
    t.equal(post.contentType, 'application/json')
    t.ok(post.key && post.key.length > 0, 'an Idempotency-Key on every POST')
    if (post.deliveries.length === 1) t.equal(post.key, post.deliveries[0].id, 'a single delivery\'s key is its id')
  }
  t.ok(agent.running)
})
