import t, { type Test } from 'tap'
import { join } from 'node:path'
import { parseExact } from '../../protocol/exact-json'
import { AgentSetup } from '../agent/support/agent-setup'
import { runFedvm } from '../support/guestfs-mount'
import { NatsServer } from '../support/nats-server'
import { waitFor } from '../support/wait'
import { Federation, freePort } from '../protocol/support/federation'
import { MonitoringStores } from '../protocol/support/monitoring-stores'
import { makeVmDir } from '../protocol/support/vm-files'

// A KPI INTEGER is 64-bit in the guest. Values beyond ±2^53, which a JSON number as JavaScript
// reads it would round, written through a real guestfs mount at C and delivered by a real agent,
// reach the primary A through B (each hop a signed request) exactly: in A's store and in
// `fedvm monitor query`, plain and sealed (encrypt: true), once through C's HTTP ingest and once
// through C's NATS bus. A's /metrics carries the nearest double: Prometheus stores floats.

const VM = 'web-1'
const EDGES = [2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n]
const VALUES: Array<number | bigint> = [...EDGES, 42]

t.test('64-bit KPI integers through C → B → A, exact', async (t) => {
  const nats = await NatsServer.start(t)
  const metrics = `127.0.0.81:${await freePort('127.0.0.81')}`
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.81', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [], prefer: ['site-b'] }, monitoring: { metricsListen: metrics, metricsSealed: true } },
    { id: 'site-b', ip: '127.0.0.82', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' }, monitoring: {} },
    { id: 'site-c', ip: '127.0.0.83', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'], monitoring: { ingest: true, nats: { servers: [nats.url], batch: 100 } } },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const stores = new MonitoringStores(fed)
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 placed A → B → C')

  const metricsOf = (table: string) => [`kpi:${table}.v`, `kpi:${table}.s`]
  const specsOf = (table: string) => [
    { metric: `kpi:${table}.v`, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
    { metric: `kpi:${table}.s`, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw', encrypt: true },
  ]
  const specs = [...specsOf('viahttp'), ...specsOf('vianats')]
  const ingest = `http://${(fed.site('site-c').config.monitoring as { ingest: string }).ingest}/v1/deliveries`
  const setup = await AgentSetup.create(t, { monitoring: specs, consumers: [ingest] })
  await setup.writeDescriptor(specs, { primarySite: { id: 'site-a', publicKey: fed.site('site-a').keys.sealPublicKey } })

  const query = async (t: Test, metric: string): Promise<Array<number | bigint>> => {
    const raw = await runFedvm(['monitor', 'query', '--config', fed.site('site-a').configFile, '--vm', VM, '--metric', metric])
    t.equal(raw.code, 0, raw.stderr)
    const text = raw.stdout.toString('utf8')
    for (const value of EDGES) t.ok(text.includes(`"value": ${value}\n`), `the query prints ${value} digit for digit`)
    const answer = parseExact(text) as { deliveries: Array<{ samples: Array<{ value: number | bigint }> }> }
    return answer.deliveries.flatMap((d) => d.samples.map((s) => s.value))
  }

  const delivered = async (t: Test, table: string): Promise<void> => {
    for (const value of VALUES) t.equal(await setup.write(table, `v,s\n${value},${value}\n`), 'ok', `wrote ${value}`)
    const [plain, sealed] = metricsOf(table)
    const stored = await waitFor(`${table} at A`, () => {
      const rows = stores.deliveries('site-a').filter((d) => d.metric === plain || d.metric === sealed)
      return rows.filter((d) => d.metric === plain).flatMap((d) => d.samples ?? []).length >= VALUES.length && rows.some((d) => d.metric === sealed) && rows
    }, 30_000)
    t.strictSame(stored.filter((d) => d.metric === plain).flatMap((d) => d.samples!.map((s) => s.value)), VALUES, 'A\'s store holds every digit (bigint beyond ±2^53)')
    t.ok(stored.filter((d) => d.metric === sealed).every((d) => d.sealed !== undefined && d.samples === undefined), 'encrypt: true travelled sealed')
    t.strictSame(await query(t, plain), VALUES, '`fedvm monitor query` at A: exact')
    t.strictSame(await query(t, sealed), VALUES, '`fedvm monitor query` at A, sealed values opened: exact')
    const text = await (await fetch(`http://${metrics}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith(`fedvm_primary_kpi{vm="${VM}",metric="${plain}",function="raw"}`))
    t.equal(Number(line?.split(' ').pop()), 42, 'A\'s /metrics: the newest value, a float as Prometheus stores it')
  }

  await t.test('through C\'s HTTP ingest', async (t) => {
    await setup.startAgent()
    await delivered(t, 'viahttp')
    await setup.agent.stop()
  })

  await t.test('through C\'s NATS bus', async (t) => {
    await setup.writeConfig({ consumers: [{ type: 'nats', servers: [nats.url], site: 'site-c' }] })
    await setup.startAgent()
    await delivered(t, 'vianats')
  })
})
