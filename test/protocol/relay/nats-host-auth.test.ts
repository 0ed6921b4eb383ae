import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstream } from '@nats-io/jetstream'
import { connect, nkeyAuthenticator, nkeys, type NatsConnection } from '@nats-io/transport-node'
import { PrimaryStore } from '../../../protocol/primary/primary-store'
import { openMonitoringDb } from '../../../protocol/relay/monitoring-db'
import { hostSender, MonitoringRelay } from '../../../protocol/relay/monitoring-relay'
import { NatsIngest } from '../../../protocol/relay/nats-ingest'
import { NatsIngestSchema } from '../../../protocol/relay/nats-config'
import { hostDeliverySubject, hostSubjects } from '../../../protocol/relay/nats-subjects'
import type { LocationRecord } from '../../../protocol/roles/records'
import { NatsServer } from '../../support/nats-server'
import { waitFor } from '../../support/wait'

// The NATS path of the forged-monitoring report, on a real nats-server that requires nkey users:
// the site's user reads the stream; each host's user may publish only on its own subjects
// (nats-server's subject permissions), and the site takes from a host's subject only deliveries
// for VMs that its location records place on that host. vm-a runs on h1, vm-b on h2.

const PREFIX = 'fedvm.deliveries'
const SITE = 'site-b'

function delivery (id: string, vm: string) {
  const to = Date.now()
  return { id, vm, metric: 'kpi:users.current_users', format: 'processed', function: 'max', from: to - 1000, to, value: 5000 }
}

t.test('per-host NATS users, subject permissions and the location check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-nats-auth-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const users = { site: nkeys.createUser(), h1: nkeys.createUser(), h2: nkeys.createUser() }
  const seed = (u: typeof users.site) => new TextDecoder().decode(u.getSeed())
  const host = (name: 'h1' | 'h2') => `{ nkey: ${users[name].getPublicKey()}, permissions: { publish: { allow: ["${hostSubjects(PREFIX, SITE, name)}"] }, subscribe: { allow: ["_INBOX.>"] } } }`
  const conf = join(dir, 'nats.conf')
  await writeFile(conf, `authorization { users = [\n  { nkey: ${users.site.getPublicKey()} }\n  ${host('h1')}\n  ${host('h2')}\n] }\n`)
  const siteSeed = join(dir, 'site.nk')
  await writeFile(siteSeed, `${seed(users.site)}\n`, { mode: 0o600 })
  const server = await NatsServer.create(t, ['-c', conf])
  await server.restart()

  const locations = new Map<string, Pick<LocationRecord, 'kind' | 'target' | 'upstream'>>([
    ['vm-a', { kind: 'host', target: 'h1', upstream: null }],
    ['vm-b', { kind: 'host', target: 'h2', upstream: null }],
  ])
  const db = openMonitoringDb(dir)
  const relay = new MonitoringRelay({
    siteId: SITE, db, primary: new PrimaryStore(db), send: async () => {}, log: () => {}, lingerMs: 1, tombstoneMs: 60_000, maxBatchBytes: 64 * 1024,
    state: {
      location: (vm) => { const l = locations.get(vm); return l && { vmId: vm, descriptor: null, version: 'v', ...l } },
      formerLocations: () => [],
    },
  })
  const events: Array<Record<string, unknown>> = []
  const attempts: string[] = []
  const ingest = new NatsIngest({
    siteId: SITE,
    config: NatsIngestSchema.parse({ servers: [server.url], nkeySeedFile: siteSeed, batch: 10 }),
    accept: (d, h) => {
      attempts.push(...d.map((x) => `${h}:${(x as { id: string }).id}`))
      return relay.accept(d, h === undefined ? 'nobody' : hostSender(h))
    },
    log: (e) => events.push(e),
  })
  ingest.start()
  t.teardown(async () => { await ingest.stop(); await relay.close(); db.close() })
  await waitFor('the site to consume', () => events.some((e) => e.event === 'nats-ingest-started'), 30_000, 50, () => JSON.stringify(events))
  const stored = (): string[] => db.prepare('SELECT id FROM deliveries ORDER BY id').pluck().all() as string[]

  await t.rejects(connect({ servers: server.url, maxReconnectAttempts: 0 }), /Authorization Violation/i, 'no user: the bus refuses the connection')

  const connections: NatsConnection[] = []
  t.teardown(() => Promise.all(connections.map((c) => c.close())))
  const asHost = async (name: 'h1' | 'h2') => {
    const nc = await connect({ servers: server.url, authenticator: nkeyAuthenticator(users[name].getSeed()), maxReconnectAttempts: 0 })
    connections.push(nc)
    return jetstream(nc)
  }
  const h1 = await asHost('h1')
  const publish = (js: ReturnType<typeof jetstream>, subject: string, body: unknown) => js.publish(subject, JSON.stringify(body), { timeout: 3000 })

  await t.resolves(publish(h1, hostDeliverySubject(PREFIX, SITE, 'h1', 'vm-a'), delivery('a1', 'vm-a')), 'h1 publishes for its VM on its subject')
  await t.rejects(publish(h1, hostDeliverySubject(PREFIX, SITE, 'h2', 'vm-b'), delivery('forged-b', 'vm-b')), 'h1 may not publish on h2\'s subjects')
  await t.rejects(publish(h1, `${PREFIX}.${SITE}.vm-b`, delivery('forged-b2', 'vm-b')), 'nor on subjects that name no host')
  await t.resolves(publish(h1, hostDeliverySubject(PREFIX, SITE, 'h1', 'vm-b'), delivery('forged-b3', 'vm-b')), 'its own subject for a VM it does not run: the bus takes it')
  const h2 = await asHost('h2')
  await t.resolves(publish(h2, hostDeliverySubject(PREFIX, SITE, 'h2', 'vm-b'), delivery('b1', 'vm-b')))

  await waitFor('the good deliveries stored', () => stored().length === 2, 20_000)
  await waitFor('the forged one offered to the relay', () => attempts.includes('h1:forged-b3'), 20_000)
  t.same(stored(), ['a1', 'b1'], 'the site stored only deliveries of a host for its own VMs')
  t.notOk(attempts.some((a) => /forged-b2?$/.test(a)), 'what the bus refused never reached the site')
})
