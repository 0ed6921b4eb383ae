import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Delivery } from '../../../protocol/relay/delivery'
import { AgentSetup, VM } from '../../agent/support/agent-setup'
import { DeliveryReceiver } from '../../agent/support/delivery-receiver'
import { Federation, freePort } from '../../protocol/support/federation'
import { makeVmDir } from '../../protocol/support/vm-files'
import { PrometheusReceiver } from '../../protocol/primary/remote-write/prometheus-receiver'
import { waitFor } from '../../support/wait'

// packaging/grafana's dashboard asks Prometheus only what fedvm gives it: every PromQL expression of
// its panels returns data from a real Prometheus that scrapes a host agent (real guestfs feed) and a
// primary site's /metrics, and takes the site's remote writes.

const DASHBOARD = join(__dirname, '../../../packaging/grafana/fedvm-dashboard.json')

t.test('each PromQL expression of the Grafana dashboard returns data', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ title: string, targets?: Array<{ expr: string }> }> }
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ panel: p.title, expr: target.expr })))
  t.ok(exprs.length >= 8, `${exprs.length} expressions`)

  // A host agent following a guest's KPI feed.
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, {
    monitoring: [{ metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'processed', function: 'max' }],
    consumers: [receiver.url],
  })
  for (const n of [12, 57, 33]) t.equal(await setup.write('users', `current_users,load\n${n},0.5\n`), 'ok')
  await setup.startAgent()

  // A primary site with /metrics and remote write to the same Prometheus.
  const fed = await Federation.create([{ id: 'site-a', ip: '127.0.0.63', hosts: [{ id: 'a1', maxVms: 2 }] }])
  t.teardown(() => fed.close())
  const ingest = `127.0.0.63:${await freePort('127.0.0.63')}`
  const metrics = `127.0.0.63:${await freePort('127.0.0.63')}`
  const prometheus = await PrometheusReceiver.start(t, [`127.0.0.1:${setup.port}`, metrics])
  await fed.reconfigure('site-a', (c) => { c.monitoring = { ingest, ingestAuth: 'none', metricsListen: metrics, remoteWrite: { url: prometheus.writeUrl } } })
  await fed.start()
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', local: true })
  const now = Date.now()
  const deliveries: Delivery[] = [{ id: 'u-0', vm: VM, metric: 'kpi:users.current_users', format: 'processed', function: 'max', from: now - 2000, to: now - 1000, value: 57 }]
  const posted = await fetch(`http://${ingest}/v1/deliveries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(deliveries) })
  t.equal(posted.status, 200, 'the site stored a delivery')

  for (const { panel, expr } of exprs) {
    const series = await waitFor(`data for "${expr}" (${panel})`, async () => { const n = await prometheus.instant(expr); return n > 0 && n }, 60_000, 250, () => prometheus.log)
    t.ok(series > 0, `${panel}: ${expr} → ${series} series`)
  }
})
