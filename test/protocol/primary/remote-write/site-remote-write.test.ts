import t from 'tap'
import { join } from 'node:path'
import { decodeKey } from '../../../../protocol/crypto/key-files'
import { seal } from '../../../../protocol/crypto/sealed-box'
import type { Delivery } from '../../../../protocol/relay/delivery'
import { waitFor } from '../../../support/wait'
import { Federation, freePort } from '../../support/federation'
import { makeVmDir } from '../../support/vm-files'
import { PrometheusReceiver } from './prometheus-receiver'

// On a real site process with `monitoring.remoteWrite`: what its ingest stores reaches a real
// Prometheus at the guest's timestamps; a sealed value stays out (metricsSealed is off).

const VM = 'vm1'
const USERS = 'kpi:users.current_users'

t.test('a primary site writes its KPI history to Prometheus', async (t) => {
  const prometheus = await PrometheusReceiver.start(t)
  const fed = await Federation.create([{ id: 'site-a', ip: '127.0.0.62', hosts: [{ id: 'a1', maxVms: 2 }] }])
  t.teardown(() => fed.close())
  const ingest = `127.0.0.62:${await freePort('127.0.0.62')}`
  await fed.reconfigure('site-a', (c) => { c.monitoring = { ingest, ingestAuth: 'none', remoteWrite: { url: prometheus.writeUrl } } })
  await fed.start()
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', local: true }, 'site-a is vm1\'s primary site')

  const post = async (deliveries: Delivery[]): Promise<void> => {
    const response = await fetch(`http://${ingest}/v1/deliveries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(deliveries) })
    t.equal(response.status, 200, 'the ingest stored the batch')
  }
  const base = Date.now() - 30_000 - 7
  const sealKey = decodeKey('seal.pub', fed.site('site-a').keys.sealPublicKey)
  const sealed = (await seal(Buffer.from(JSON.stringify({ function: 'mean', value: 4711.5 })), sealKey)).toString('base64')
  await post([
    { id: 'r-0', vm: VM, metric: 'kpi:revenue', format: 'processed', function: 'mean', from: base, to: base + 1000, sealed },
    { id: 'u-0', vm: VM, metric: USERS, format: 'raw', from: base, to: base + 1500, samples: [{ ts: base, value: 10 }, { ts: base + 1500, value: 12 }] },
  ])
  await post([{ id: 'u-1', vm: VM, metric: USERS, format: 'processed', function: 'median', from: base + 1500, to: base + 5001, value: 11 }])

  const held = await waitFor('both batches in Prometheus', async () => {
    const samples = await prometheus.samples(`fedvm_kpi_history{vm="${VM}"}`, Date.now())
    return samples.length >= 3 && samples
  }, 60_000, 200, () => prometheus.log)
  t.same(held.map((s) => [s.labels.metric, s.labels.function, s.ts, s.value]).sort(), [
    [USERS, 'median', base + 5001, 11],
    [USERS, 'raw', base, 10],
    [USERS, 'raw', base + 1500, 12],
  ], 'every value at its guest timestamp; the sealed revenue (stored before them) left out')
})
