import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node'
import t from 'tap'
import { parseConfig } from '../../../agent/config/agent-config'
import type { AgentDelivery as Delivery } from '../../../protocol/relay/delivery'
import { NatsConsumer } from '../../../agent/outputs/nats-consumer'
import { AgentStore } from '../../../agent/state/agent-store'
import { NatsServer } from '../../support/nats-server'
import { sleep, waitFor } from '../../support/wait'

// On the agent's side: the `nats` consumer sends the durable outbox to JetStream, one
// subject per site and VM, the delivery id as Nats-Msg-Id; a delivery leaves the outbox only on
// its PubAck. Here a test stream (limits retention, so everything stays readable) takes them.

const STREAM = 'AGENT_TEST'
const SITE = 'site.c'
const PREFIX = 'fedvm.deliveries'
const CONSUMER = 'nats:site.c'

interface Stored { subject: string, msgId: string | undefined, delivery: Delivery }

async function readStream (nc: NatsConnection): Promise<Stored[]> {
  const jsm = await jetstreamManager(nc)
  const count = (await jsm.streams.info(STREAM)).state.messages
  const stored: Stored[] = []
  if (count === 0) return stored
  const consumer = await jetstream(nc).consumers.get(STREAM)
  const messages = await consumer.fetch({ max_messages: count, expires: 10_000 })
  for await (const m of messages) {
    stored.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), delivery: m.json<Delivery>() })
    if (stored.length === count) break
  }
  return stored
}

function deliveries (vm: string, prefix: string, n: number): Delivery[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, vm, metric: 'kpi:load.requests', format: 'processed' as const, function: 'mean' as const, from: i, to: i, value: i }))
}

t.test('the nats consumer: subjects per VM, ids as Nats-Msg-Id, nothing lost or repeated across a nats-server crash', async (t) => {
  const server = await NatsServer.start(t)
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 })
  t.teardown(() => nc.close())
  await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: [`${PREFIX}.site~2Ec.>`], retention: RetentionPolicy.Limits, storage: StorageType.File, duplicate_window: nanos(600_000) })

  const dir = await mkdtemp(join(tmpdir(), 'fedvm-nats-consumer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new AgentStore(dir)
  t.teardown(() => store.close())
  const logs: string[] = []
  const consumer = new NatsConsumer(CONSUMER, { servers: [server.url], site: SITE, subjectPrefix: PREFIX }, store, (line) => logs.push(line))
  t.teardown(() => consumer.stop())
  consumer.start()

  await t.test('two VMs, one with a "." in its id: each on its own subject', async (t) => {
    for (const d of [...deliveries('web-1', 'a', 300), ...deliveries('db.2', 'b', 200)]) store.enqueue(CONSUMER, d)
    consumer.kick()
    await waitFor('an empty outbox', () => store.queueLength(CONSUMER) === 0, 20_000)
    const stored = await readStream(nc)
    t.equal(stored.length, 500)
    t.ok(stored.filter((s) => s.delivery.vm === 'web-1').every((s) => s.subject === 'fedvm.deliveries.site~2Ec.web-1'), 'web-1 → fedvm.deliveries.site~2Ec.web-1')
    t.ok(stored.filter((s) => s.delivery.vm === 'db.2').every((s) => s.subject === 'fedvm.deliveries.site~2Ec.db~2E2'), 'db.2 → one token, db~2E2')
    t.ok(stored.every((s) => s.msgId === s.delivery.id), 'Nats-Msg-Id is the delivery id')
    t.equal(consumer.stats.sent, 500)
  })

  await t.test('a site no stream takes: no PubAck ("no responders"), the deliveries stay queued', async (t) => {
    const lost = new NatsConsumer('nats:site-x', { servers: [server.url], site: 'site-x', subjectPrefix: PREFIX }, store, (line) => logs.push(line))
    t.teardown(() => lost.stop())
    lost.start()
    for (const d of deliveries('web-1', 'nowhere', 5)) store.enqueue('nats:site-x', d)
    lost.kick()
    await waitFor('the failure logged', () => logs.some((l) => /consumer nats:site-x: delivery failed \(5 of 5 publishes without a PubAck: no responders/.test(l)), 10_000)
    t.equal(store.queueLength('nats:site-x'), 5, 'all five still in the outbox')
    lost.stop()
  })

  await t.test('nats-server SIGKILLed while the agent publishes, restarted on the same store: every delivery once', async (t) => {
    const batch = deliveries('web-1', 'crash', 4000)
    const sentBefore = consumer.stats.sent
    // Queued in steps, as a busy agent would, so publishes are in flight when the server dies.
    const queueing = (async () => {
      for (let i = 0; i < batch.length; i += 250) {
        store.transaction(() => { for (const d of batch.slice(i, i + 250)) store.enqueue(CONSUMER, d) })
        consumer.kick()
        await sleep(5)
      }
    })()
    await waitFor('some deliveries through', () => consumer.stats.sent - sentBefore >= 500, 20_000, 1)
    await server.kill()
    t.comment(`nats-server killed after ${consumer.stats.sent - sentBefore} PubAcks`)
    await queueing
    await sleep(800)
    const waiting = store.queueLength(CONSUMER)
    t.ok(waiting > 0, `the outbox keeps what had no PubAck (${waiting})`)
    await server.restart()
    await waitFor('an empty outbox after the restart', () => store.queueLength(CONSUMER) === 0, 30_000)
    t.ok(logs.some((l) => /reconnected to NATS/.test(l)), 'the consumer reconnected by itself')

    const stored = (await readStream(nc)).filter((s) => s.delivery.id.startsWith('crash-'))
    const ids = new Set(stored.map((s) => s.delivery.id))
    t.equal(ids.size, batch.length, `all ${batch.length} deliveries in the stream`)
    t.equal(stored.length, batch.length, 'each once: republished ones were dropped by Nats-Msg-Id')
  })

  await t.test('an agent (re)started while the server is down: the outbox waits, then goes', async (t) => {
    await server.kill()
    consumer.stop()
    const restarted = new NatsConsumer(CONSUMER, { servers: [server.url], site: SITE, subjectPrefix: PREFIX }, store, (line) => logs.push(line))
    t.teardown(() => restarted.stop())
    restarted.start()
    for (const d of deliveries('web-1', 'later', 100)) store.enqueue(CONSUMER, d)
    restarted.kick()
    await sleep(1500)
    t.equal(store.queueLength(CONSUMER), 100, 'nothing leaves without a PubAck')
    await server.restart()
    await waitFor('the 100 delivered', () => store.queueLength(CONSUMER) === 0, 20_000)
    t.equal((await readStream(nc)).filter((s) => s.delivery.id.startsWith('later-')).length, 100)
  })
})

t.test('config: a nats consumer is parsed; a bad one names its field', async (t) => {
  const config = parseConfig({ consumers: [{ type: 'nats', servers: ['nats://127.0.0.1:4222'], site: 'site-c' }] }, '/etc/fedvm/agent.json')
  t.same(config.consumers, [{ type: 'nats', servers: ['nats://127.0.0.1:4222'], site: 'site-c', subjectPrefix: 'fedvm.deliveries' }])
  t.throws(() => parseConfig({ consumers: [{ type: 'nats', servers: [], site: 'site-c' }] }, 'a.json'), /consumers\[0\]\.servers: name at least one NATS server/)
  t.throws(() => parseConfig({ consumers: [{ type: 'nats', servers: ['nats://h:1'], site: 'Site C' }] }, 'a.json'), /consumers\[0\]\.site/)
  t.throws(() => parseConfig({ consumers: [{ type: 'nats', servers: ['nats://h:1'], site: 'c', subjectPrefix: 'a.*' }] }, 'a.json'), /consumers\[0\]\.subjectPrefix/)
  t.throws(() => parseConfig({ consumers: [{ type: 'nats', servers: ['nats://h:1'], site: 'c', url: 'http://x' }] }, 'a.json'), /consumers\[0\]/)
})
