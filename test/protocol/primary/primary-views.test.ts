import t from 'tap'
import { cp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeKey, encodeKey } from '../../../protocol/crypto/key-files'
import { generateBoxKeyPair, seal } from '../../../protocol/crypto/sealed-box'
import type { Delivery } from '../../../protocol/relay/delivery'
import { PrometheusServer } from '../../support/prometheus'
import { Federation, freePort } from '../support/federation'
import { runFedvm } from '../support/fedvm-process'
import { makeVmDir } from '../support/vm-files'

// On a real site process: deliveries posted to its local ingest land in its primary
// store; `fedvm monitor query` reads them back (sealed ones opened with the site's seal.key only),
// and the site's own /metrics shows the newest values, scraped by a real Prometheus.

const VM = 'vm1'
const USERS = 'kpi:users.current_users'
const REVENUE = 73915.625 // sealed by the host agent (encrypt: true)
const SECRET = 7321 // sealed by the application (encrypted/)
const MIN = 60_000

t.test('the primary site\'s store: query command and /metrics', async (t) => {
  const fed = await Federation.create([{ id: 'site-a', ip: '127.0.0.61', hosts: [{ id: 'a1', maxVms: 2 }] }])
  t.teardown(() => fed.close())
  const site = fed.site('site-a')
  const ingest = `127.0.0.61:${await freePort('127.0.0.61')}`
  const metrics = `127.0.0.61:${await freePort('127.0.0.61')}`
  await fed.reconfigure('site-a', (c) => { c.monitoring = { ingest, ingestAuth: 'none', metricsListen: metrics } })
  await fed.start()
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', local: true }, 'site-a is vm1\'s primary site and runs it')

  const now = Date.now()
  const sealKey = decodeKey('seal.pub', site.keys.sealPublicKey)
  const sealed = async (text: string): Promise<string> => (await seal(Buffer.from(text), sealKey)).toString('base64')
  const users = [50, 40, 30, 20, 5, 1].map((ago, i): Delivery => ({ id: `u-${i}`, vm: VM, metric: USERS, format: 'processed', function: 'median', from: now - ago * MIN - 10_000, to: now - ago * MIN, value: (i + 1) * 100 }))
  const deliveries: Delivery[] = [
    ...users,
    { id: 'c-0', vm: VM, metric: 'cpu.time', format: 'raw', from: now - 3 * MIN, to: now - 2 * MIN, samples: [{ ts: now - 3 * MIN, value: 1.5 }, { ts: now - 2 * MIN, value: 2.5 }] },
    { id: 'r-0', vm: VM, metric: 'kpi:billing.revenue', format: 'processed', function: 'mean', from: now - 5 * MIN, to: now - 4 * MIN, sealed: await sealed(JSON.stringify({ function: 'mean', value: REVENUE })) },
    { id: 's-0', vm: VM, metric: 'kpi:secret', format: 'raw', from: now - 6 * MIN, to: now - 6 * MIN, sealed: await sealed(`${SECRET}\n`) },
    { id: 's-1', vm: VM, metric: 'kpi:secret', format: 'raw', from: now - 7 * MIN, to: now - 7 * MIN, sealed: await sealed('gold tier') },
  ]
  const posted = await fetch(`http://${ingest}/v1/deliveries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(deliveries) })
  t.equal(posted.status, 200, 'the ingest stored the batch')
  t.same(await posted.json(), { accepted: deliveries.length })

  const query = async (...args: string[]): Promise<{ code: number | null, json: any, stdout: string, stderr: string }> => {
    const raw = await runFedvm(['monitor', 'query', '--config', site.configFile, '--vm', VM, ...args])
    let json: unknown
    try { json = JSON.parse(raw.stdout) } catch { json = undefined }
    return { ...raw, json }
  }

  t.test('JSON: every delivery, sealed ones opened', async (t) => {
    const all = await query()
    t.equal(all.code, 0, all.stderr)
    t.equal(all.json.count, deliveries.length)
    t.same(all.json.deliveries.map((d: { id: string }) => d.id), ['u-0', 'u-1', 'u-2', 'u-3', 's-1', 's-0', 'u-4', 'r-0', 'c-0', 'u-5'], 'oldest first by data time')
    const byId = new Map<string, any>(all.json.deliveries.map((d: { id: string }) => [d.id, d]))
    t.match(byId.get('u-5'), { metric: USERS, format: 'processed', function: 'median', value: 600, sealed: false, time: new Date(now - MIN).toISOString() })
    t.match(byId.get('c-0'), { format: 'raw', samples: [{ value: 1.5 }, { value: 2.5 }], sealed: false })
    t.match(byId.get('r-0'), { function: 'mean', value: REVENUE, sealed: true }, 'the host-sealed value opened')
    t.same(byId.get('s-0').samples, [{ ts: now - 6 * MIN, value: SECRET }], 'the application-sealed number opened')
    t.same(byId.get('s-1').samples, [{ ts: now - 7 * MIN, value: 'gold tier' }], 'and its text')
    t.notOk(JSON.stringify(all.json).includes('"sealed":"'), 'no sealed payload in the output, only the flag')
  })

  t.test('--metric and --since as a duration ago', async (t) => {
    const recent = await query('--metric', USERS, '--since', '10m')
    t.equal(recent.code, 0, recent.stderr)
    t.same(recent.json.deliveries.map((d: { value: number }) => d.value), [500, 600], 'the last 10 minutes')
    t.equal(recent.json.metric, USERS)
  })

  t.test('table output: one line per value; --since as an ISO time', async (t) => {
    const table = await query('--since', new Date(now - 25 * MIN).toISOString(), '--output', 'table')
    t.equal(table.code, 0, table.stderr)
    const lines = table.stdout.trimEnd().split('\n')
    t.match(lines[0], /^TIME\s+METRIC\s+FUNCTION\s+VALUE\s+SEALED$/)
    t.same(lines.slice(1).map((l) => l.split(/\s{2,}/)), [
      [new Date(now - 20 * MIN).toISOString(), USERS, 'median', '400'],
      [new Date(now - 7 * MIN).toISOString(), 'kpi:secret', 'raw', '"gold tier"', 'yes'],
      [new Date(now - 6 * MIN).toISOString(), 'kpi:secret', 'raw', String(SECRET), 'yes'],
      [new Date(now - 5 * MIN).toISOString(), USERS, 'median', '500'],
      [new Date(now - 4 * MIN).toISOString(), 'kpi:billing.revenue', 'mean', String(REVENUE), 'yes'],
      [new Date(now - 3 * MIN).toISOString(), 'cpu.time', 'raw', '1.5'],
      [new Date(now - 2 * MIN).toISOString(), 'cpu.time', 'raw', '2.5'],
      [new Date(now - 1 * MIN).toISOString(), USERS, 'median', '600'],
    ], 'raw samples on their own lines; a text value quoted')
  })

  t.test('sealed values open only with the site\'s seal key', async (t) => {
    // Two copies of the site's config: keys without seal.key, and keys with another site's seal.key.
    const variant = async (name: string, sealKeyText: string | undefined): Promise<string> => {
      const dir = join(site.dir, name)
      await cp(join(site.dir, 'keys'), dir, { recursive: true })
      await rm(join(dir, 'seal.key'))
      if (sealKeyText !== undefined) await writeFile(join(dir, 'seal.key'), sealKeyText, { mode: 0o600 })
      const file = join(site.dir, `${name}.json`)
      await writeFile(file, JSON.stringify({ ...site.config, keys: name }))
      return file
    }
    const missing = await variant('keys-without-seal', undefined)
    const other = await variant('keys-other-seal', `${encodeKey((await generateBoxKeyPair()).secretKey)}\n`)

    const noKey = await runFedvm(['monitor', 'query', '--config', missing, '--vm', VM])
    t.equal(noKey.code, 1)
    t.match(noKey.stderr, /delivery (r-0|s-\d) is sealed and .*keys-without-seal\/seal\.key is missing: only the primary site's seal key opens it/)
    t.equal(noKey.stdout, '', 'nothing half-printed')
    const unsealedOnly = await runFedvm(['monitor', 'query', '--config', missing, '--vm', VM, '--metric', USERS])
    t.equal(unsealedOnly.code, 0, 'unsealed metrics still read without the key')
    t.equal(JSON.parse(unsealedOnly.stdout).count, 6)

    const wrongKey = await runFedvm(['monitor', 'query', '--config', other, '--vm', VM, '--metric', 'kpi:billing.revenue'])
    t.equal(wrongKey.code, 1)
    t.match(wrongKey.stderr, /delivery r-0: the sealed value does not open with .*keys-other-seal\/seal\.key \(sealed for another key, or altered\)/)
    t.notOk((wrongKey.stdout + wrongKey.stderr).includes(String(REVENUE)))

  })

  t.test('/metrics: newest value per VM metric; sealed values only as timestamps by default', async (t) => {
    const text = await (await fetch(`http://${metrics}/metrics`)).text()
    t.match(text, `fedvm_primary_kpi{vm="vm1",metric="${USERS}",function="median"} 600\n`)
    t.match(text, 'fedvm_primary_kpi{vm="vm1",metric="cpu.time",function="raw"} 2.5\n', 'raw: the last sample')
    t.match(text, `fedvm_primary_kpi_timestamp_seconds{vm="vm1",metric="${USERS}",function="median"} ${(now - MIN) / 1000}\n`)
    t.match(text, `fedvm_primary_kpi_timestamp_seconds{vm="vm1",metric="kpi:billing.revenue",function="mean"} ${(now - 4 * MIN) / 1000}\n`)
    t.notMatch(text, /fedvm_primary_kpi\{[^}]*(billing|secret)/, 'no sealed value')
    t.notOk(text.includes(String(REVENUE)) || text.includes(String(SECRET)))

    const prometheus = await PrometheusServer.start(t, [metrics], { job: 'fedvm-primary' })
    let series: Awaited<ReturnType<PrometheusServer['query']>> = []
    const until = Date.now() + 30_000
    while (series.length < 2 && Date.now() < until) {
      series = await prometheus.query(`fedvm_primary_kpi{vm="${VM}"}`)
      if (series.length < 2) await new Promise((resolve) => setTimeout(resolve, 250))
    }
    t.same(series.map((s) => [s.metric.metric, s.metric.function, s.value]).sort(), [['cpu.time', 'raw', 2.5], [USERS, 'median', 600]], 'Prometheus scraped the two unsealed series')
    t.same(await prometheus.query('fedvm_primary_kpi{metric="kpi:billing.revenue"}'), [])
    t.equal((await prometheus.query('fedvm_primary_kpi_timestamp_seconds{metric="kpi:secret"}'))[0]?.value, (now - 6 * MIN) / 1000)
  })

  t.test('after a restart /metrics starts from the store; metricsSealed shows opened sealed values', async (t) => {
    await fed.stop('site-a')
    await fed.reconfigure('site-a', (c) => { c.monitoring.metricsSealed = true })
    await fed.start('site-a')
    const text = await (await fetch(`http://${metrics}/metrics`)).text()
    t.match(text, `fedvm_primary_kpi{vm="vm1",metric="${USERS}",function="median"} 600\n`, 'the newest value, read back from monitoring.db')
    t.match(text, `fedvm_primary_kpi{vm="vm1",metric="kpi:billing.revenue",function="mean"} ${REVENUE}\n`, 'opt-in: the sealed value, opened')
    t.match(text, `fedvm_primary_kpi{vm="vm1",metric="kpi:secret",function="raw"} ${SECRET}\n`, 'the newest application-sealed sample (a number)')
  })

  t.test('the daemon never logged an opened value', async (t) => {
    const logged = fed.daemon('site-a').stderr
    for (const secret of [String(REVENUE), String(SECRET), 'gold tier']) t.notOk(logged.includes(secret), `no ${secret} in the log`)
  })
})
