import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import t from 'tap'
import { readSealKeyPair } from '../../../protocol/crypto/key-files'
import { unseal } from '../../../protocol/crypto/sealed-box'
import { AgentSetup } from '../../agent/support/agent-setup'
import { sleep, waitFor } from '../../support/wait'
import { NatsServer } from '../../support/nats-server'
import { Federation } from '../support/federation'
import { injected, MonitoringStores } from '../support/monitoring-stores'
import { makeVmDir } from '../support/vm-files'

// The NATS bus as the ingest of a site. A (primary) delegated web-1 to B; B's host
// agent (a real `fedvm agent run` on a real guestfs mount) publishes to a real `nats-server -js`;
// B takes the deliveries from its JetStream stream, stores them in its relay outbox, acks, and
// forwards them signed to A. The server is SIGKILLed while the agent publishes and restarted on
// the same store dir; then B is. Then bad messages on the bus.

const VM = 'web-1'
const USERS = 'kpi:users.current_users'
const REVENUE = 91827.375
const ROWS = 90

async function filesUnder (dir: string): Promise<Buffer> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return Buffer.concat(await Promise.all(entries.filter((e) => e.isFile()).map((e) => readFile(join(e.parentPath, e.name)))))
}

t.test('agent → NATS → site B → A: nothing lost across a nats-server crash, sealed stays sealed', async (t) => {
  const nats = await NatsServer.start(t)
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.71', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [], prefer: ['site-b'] }, monitoring: {} },
    { id: 'site-b', ip: '127.0.0.72', hosts: [{ id: 'b1', maxVms: 1 }], partners: ['site-a'], monitoring: { nats: { servers: [nats.url], batch: 200 } } },
  ])
  t.teardown(() => fed.close())
  await nats.kill() // B starts while the bus is down: it keeps trying
  await fed.start()
  const stores = new MonitoringStores(fed)
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 runs at B for A')
  await fed.daemon('site-b').waitForEvent((e) => e.event === 'nats-ingest-failed')
  await nats.restart()
  await fed.daemon('site-b').waitForEvent((e) => e.event === 'nats-ingest-started' && e.stream === 'FEDVM_DELIVERIES_site-b')

  const specs = [
    { metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
    { metric: 'kpi:billing.revenue', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw', encrypt: true },
  ]
  const setup = await AgentSetup.create(t, { monitoring: specs })
  await setup.writeDescriptor(specs, { primarySite: { id: 'site-a', publicKey: fed.site('site-a').keys.sealPublicKey } })
  await setup.writeConfig({ consumers: [{ type: 'nats', servers: [nats.url], site: 'site-b' }] })
  await setup.startAgent()

  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 })
  t.teardown(() => nc.close())
  // What the bus carries, as any subscriber on it would see it.
  const onTheBus: Buffer[] = []
  nc.subscribe('fedvm.deliveries.>', { callback: (_err, msg) => { onTheBus.push(Buffer.from(msg.data)) } })
  await nc.flush()
  const usersAtA = () => stores.deliveries('site-a').filter((d) => d.metric === USERS).flatMap((d) => d.samples!.map((s) => Number(s.value)))

  await t.test('nats-server SIGKILLed while the agent publishes, restarted: every KPI row once at A', async (t) => {
    t.equal(await setup.write('billing', `revenue\n${REVENUE}\n`), 'ok')
    for (let n = 1; n <= ROWS; n++) {
      t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok', `row ${n}`)
      if (n === 20) await waitFor('the first rows through the bus at A', () => usersAtA().length >= 10, 20_000)
      if (n === 30) await nats.kill()
      if (n === 60) await nats.restart()
    }
    const values = await waitFor(`all ${ROWS} rows at A`, () => { const v = usersAtA(); return v.length >= ROWS && v }, 40_000)
    await sleep(500)
    const again = usersAtA()
    t.equal(again.length, ROWS, 'no row twice at A')
    t.same([...new Set(again)].sort((a, b) => a - b), Array.from({ length: ROWS }, (_, i) => i + 1), 'every row 1…90')
    t.equal(values.length, ROWS)
    t.ok(fed.daemon('site-b').events().some((e) => e.event === 'nats-ingest-started' || e.event === 'nats-ingest-interrupted'))

    const jsm = await jetstreamManager(nc)
    await waitFor('the stream emptied (work queue: acked messages go)', async () => (await jsm.streams.info('FEDVM_DELIVERIES_site-b')).state.messages === 0, 10_000)
    // The consumer's count of pending acks follows the stream's removal of acked messages a moment later.
    const pending = async (): Promise<number> => (await jsm.consumers.info('FEDVM_DELIVERIES_site-b', 'fedvm-site')).num_ack_pending
    await waitFor('no message handed out and unacknowledged', async () => await pending() === 0, 10_000).catch(() => undefined)
    t.equal(await pending(), 0, 'nothing handed out and unacknowledged')
    await waitFor('B drained its relay outbox', () => stores.queued('site-b') === 0, 10_000)
  })

  await t.test('site B SIGKILLed while the agent publishes: the stream keeps the rows, B takes them after its restart', async (t) => {
    const jsm = await jetstreamManager(nc)
    for (let n = ROWS + 1; n <= ROWS + 40; n++) {
      t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok', `row ${n}`)
      if (n === ROWS + 10) await fed.stop('site-b', 'SIGKILL')
    }
    await waitFor('rows waiting in the stream while B is down', async () => (await jsm.streams.info('FEDVM_DELIVERIES_site-b')).state.messages >= 25, 10_000)
    await fed.start('site-b')
    const values = await waitFor(`all ${ROWS + 40} rows at A`, () => { const v = usersAtA(); return v.length >= ROWS + 40 && v }, 30_000)
    await sleep(500)
    t.equal(usersAtA().length, ROWS + 40, 'no row twice at A (a message stored but not yet acked when B died came again and was dropped by id)')
    t.same([...new Set(values)].sort((a, b) => a - b), Array.from({ length: ROWS + 40 }, (_, i) => i + 1))
    await waitFor('the stream emptied again', async () => (await jsm.streams.info('FEDVM_DELIVERIES_site-b')).state.messages === 0, 10_000)
  })

  await t.test('the sealed payload stays sealed on the bus and at B; A opens it', async (t) => {
    const revenue = await waitFor('the sealed delivery at A', () => stores.deliveries('site-a').find((d) => d.metric === 'kpi:billing.revenue'), 10_000)
    t.equal(revenue.samples, undefined, 'stored sealed at A')
    const aSeal = await readSealKeyPair(join(fed.site('site-a').dir, 'keys', 'seal.key'))
    t.same(JSON.parse((await unseal(Buffer.from(revenue.sealed!, 'base64'), aSeal)).toString()).samples.map((s: { value: number }) => s.value), [REVENUE], 'A opens it with its seal.key')
    t.notOk(stores.rawBytes('site-b').includes(String(REVENUE)), 'B\'s monitoring.db and WAL hold no plaintext')
    t.notOk((await filesUnder(nats.storeDir)).includes(String(REVENUE)), 'the JetStream store holds no plaintext')
    const wire = Buffer.concat(onTheBus)
    t.ok(wire.includes(revenue.sealed!), 'the bus carried the sealed delivery')
    t.notOk(wire.includes(String(REVENUE)), 'and no plaintext value')
  })

  await t.test('bad messages on the bus: terminated and logged, good ones of the same burst taken', async (t) => {
    const js = jetstream(nc)
    const subject = 'fedvm.deliveries.site-b.web-1'
    const good = injected(VM, 'bus-good', 20)
    const bad = { ...injected(VM, 'bus-bad', 1)[0], format: 'raw' }
    await Promise.all([
      ...good.slice(0, 10).map((d) => js.publish(subject, JSON.stringify(d), { msgID: d.id })),
      js.publish(subject, JSON.stringify(bad), { msgID: bad.id }),
      js.publish(subject, '{"id": ', { msgID: 'bus-not-json' }),
      js.publish('fedvm.deliveries.site-b.db-9', JSON.stringify({ ...good[0], id: 'bus-wrong-subject' }), { msgID: 'bus-wrong-subject' }),
      ...good.slice(10).map((d) => js.publish(subject, JSON.stringify(d), { msgID: d.id })),
    ])
    await waitFor('the 20 good ones at A', () => stores.countIds('site-a', good.map((d) => d.id)) === 20, 20_000)
    const refused = await waitFor('three refusals logged', () => {
      const events = fed.daemon('site-b').events().filter((e) => e.event === 'nats-delivery-refused')
      return events.length >= 3 && events
    }, 10_000)
    t.match(refused.map((e) => e.reason).sort(), [/deliveries\[0\]\.value/, /not JSON/, /not the VM its subject names/], 'each refusal says why (the field for a malformed one)')
    t.equal(stores.countIds('site-a', ['bus-bad-0', 'bus-wrong-subject']), 0, 'neither refused one stored')
    t.notOk(fed.daemon('site-b').stderr.includes('"value":0'), 'refusals are logged without the delivery\'s content')

    const ghost = { ...good[0], id: 'bus-ghost', vm: 'ghost' }
    await js.publish('fedvm.deliveries.site-b.ghost', JSON.stringify(ghost), { msgID: ghost.id })
    const retry = await fed.daemon('site-b').waitForEvent((e) => e.event === 'nats-delivery-retry' && e.code === 'unknown-vm', 10_000)
    t.match(retry, { subject: 'fedvm.deliveries.site-b.ghost' }, 'a VM B does not know (yet): kept on the bus and offered again later, as HTTP retries')
    const info = await (await jetstreamManager(nc)).streams.info('FEDVM_DELIVERIES_site-b')
    t.equal(info.state.messages, 1, 'only that one is left in the stream')
  })
})
