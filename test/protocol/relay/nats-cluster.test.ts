import { join } from 'node:path'
import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import t from 'tap'
import { AgentSetup } from '../../agent/support/agent-setup'
import { NatsCluster } from '../../support/nats-cluster'
import { sleep, waitFor } from '../../support/wait'
import { Federation } from '../support/federation'
import { MonitoringStores } from '../support/monitoring-stores'
import { makeVmDir } from '../support/vm-files'

// The NATS bus on a three-node JetStream cluster (Debian's nats-server), the site's stream with
// replicas 3. A (primary) delegated web-1 to B; B's host agent (a real `fedvm agent run` on a real
// guestfs mount) publishes to the cluster; B takes the deliveries from its stream and forwards
// them signed to A. The stream's leader is SIGKILLed while the agent publishes and stays down
// while the rest is written: A has every row exactly once. Then it comes back and catches up.

const VM = 'web-1'
const USERS = 'kpi:users.current_users'
const ROWS = 90
const STREAM = 'FEDVM_DELIVERIES_site-b'

t.test('agent → 3-node JetStream cluster → site B → A: the stream leader SIGKILLed mid-stream, every row once at A', async (t) => {
  const cluster = await NatsCluster.start(t)
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.73', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [], prefer: ['site-b'] }, monitoring: {} },
    { id: 'site-b', ip: '127.0.0.74', hosts: [{ id: 'b1', maxVms: 1 }], partners: ['site-a'], monitoring: { nats: { servers: cluster.urls, replicas: 3, batch: 200 } } },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const stores = new MonitoringStores(fed)
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 runs at B for A')
  const started = await fed.daemon('site-b').waitForEvent((e) => e.event === 'nats-ingest-started' && e.stream === STREAM, 30_000)

  const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 200 })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const streamInfo = async (): Promise<StreamInfo> => await jsm.streams.info(STREAM)
  const before = await streamInfo()
  t.equal(before.config.num_replicas, 3, 'B made its stream with replicas 3 (monitoring.nats.replicas)')
  const current = (info: StreamInfo) => info.cluster?.leader !== undefined && (info.cluster.replicas ?? []).length === 2 && info.cluster.replicas!.every((r) => r.current)
  await waitFor('the stream\'s leader and two current followers', async () => current(await streamInfo()), 20_000, 100, () => cluster.logs())

  const specs = [{ metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }]
  const setup = await AgentSetup.create(t, { monitoring: specs })
  await setup.writeDescriptor(specs, { primarySite: { id: 'site-a', publicKey: fed.site('site-a').keys.sealPublicKey } })
  await setup.writeConfig({ consumers: [{ type: 'nats', servers: cluster.urls, site: 'site-b' }] })
  await setup.startAgent()
  const usersAtA = () => stores.deliveries('site-a').filter((d) => d.metric === USERS).flatMap((d) => d.samples!.map((s) => Number(s.value)))

  let killed: string | undefined
  for (let n = 1; n <= ROWS; n++) {
    t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok', `row ${n}`)
    if (n === 20) await waitFor('the first rows through the cluster at A', () => usersAtA().length >= 10, 20_000)
    if (n === 30) {
      const leader = cluster.byName((await streamInfo()).cluster?.leader)
      killed = leader.name
      t.comment(`SIGKILL the stream leader ${leader.name} (pid ${String(leader.pid)}); B's ingest started on ${String(started.server)}`)
      await leader.kill()
    }
  }
  const values = await waitFor(`all ${ROWS} rows at A`, () => { const v = usersAtA(); return v.length >= ROWS && v }, 60_000, 100, () => `${fed.daemon('site-b').stderr.slice(-3000)}\n${cluster.logs()}`)
  await sleep(500)
  t.equal(usersAtA().length, ROWS, 'no row twice at A')
  t.same([...new Set(values)].sort((a, b) => a - b), Array.from({ length: ROWS }, (_, i) => i + 1), 'every row 1…90')
  const during = await streamInfo()
  t.not(during.cluster?.leader, killed, `a new leader (${String(during.cluster?.leader)}) took over from ${String(killed)}`)
  await waitFor('B drained its relay outbox', () => stores.queued('site-b') === 0, 10_000)
  t.ok(fed.daemon('site-b').alive, 'site B kept running')

  const node = cluster.byName(killed)
  await node.restart()
  await waitFor('the restarted member current again as a follower', async () => current(await streamInfo()), 30_000, 200, () => cluster.logs())
  // Work-queue retention: acked messages go. An ack lost with the killed member comes back after
  // the consumer's ack wait (30 s), is dropped by id at B, and acked then.
  await waitFor('the stream emptied', async () => (await streamInfo()).state.messages === 0, 45_000, 200)
  t.equal(usersAtA().length, ROWS, 'still every row once at A')
})
