import t from 'tap'
import bcrypt from 'bcryptjs'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { get, request } from 'node:http'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { decodeKey } from '../../protocol/crypto/key-files'
import { seal } from '../../protocol/crypto/sealed-box'
import type { Delivery } from '../../protocol/relay/delivery'
import { Federation, freePort } from '../protocol/support/federation'
import { MonitoringStores, postIngest } from '../protocol/support/monitoring-stores'
import { makeVmDir } from '../protocol/support/vm-files'
import { launchChromium } from '../support/headless-chromium'
import { waitFor } from '../support/wait'

// The site dashboard in a real headless chromium. Site A is the primary site of web-1 (on one of its
// own hosts) and web-2 (which it moved to partner B); deliveries for both reach A's monitoring store
// through the real ingests (web-2's through B's relay). A's page, behind basic auth, must show where
// each VM is (web-2 only as "partner site-b"), charts holding exactly the stored points (a sealed KPI
// opened with A's key), the rule that fired, and a bar that moves while A's throttled proxy migrates
// web-1 to its other host, and again while it goes to B (figures B reports to A's Controller); nothing
// of B's hosts or addresses may appear in the page or its JSON.

const ARTIFACTS = join(__dirname, '..', 'artifacts')
const USER = 'operator'
const PASSWORD = 'dashboard-test-password'
const USERS = 'kpi:users.current_users'
const LOAD = 'kpi:users.load'
const REVENUE = 'kpi:revenue'

t.test('the site dashboard shows VMs, KPI charts, rule firings and a moving migration, and no partner internals', async (t) => {
  const fed = await Federation.create([
    {
      id: 'site-a', ip: '127.0.0.91', hosts: [{ id: 'alpha-1', maxVms: 1 }, { id: 'alpha-2', maxVms: 1 }], partners: ['site-b'],
      // About 8 s for web-1's 6 MiB: long enough for the page (polling each second) to see the bar move.
      maxBytesPerSecond: 768 * 1024, limits: { chunkBytes: 256 * 1024 },
      monitoring: { ingest: true, rules: [{ name: 'too-busy', when: `${USERS} > 1000`, action: 'log' }] },
    },
    { id: 'site-b', ip: '127.0.0.92', hosts: [{ id: 'bravo-host-1', maxVms: 2 }], partners: ['site-a'], monitoring: { ingest: true } },
  ])
  t.teardown(() => fed.close())
  const a = fed.site('site-a')
  const b = fed.site('site-b')
  await writeFile(join(a.dir, 'web.yml'), `basic_auth_users:\n  ${USER}: ${bcrypt.hashSync(PASSWORD, 4)}\n`)
  const dashboardA = `127.0.0.91:${await freePort('127.0.0.91')}`
  const dashboardB = `127.0.0.92:${await freePort('127.0.0.92')}`
  await fed.reconfigure('site-a', (c) => { c.dashboard = { listen: dashboardA, webConfig: 'web.yml', sealed: true } })
  await fed.reconfigure('site-b', (c) => { c.dashboard = { listen: dashboardB } })
  await fed.start()

  // web-1 and web-2 take A's two hosts; web-2 then goes to B, freeing one of them.
  t.match((await fed.cli('site-a', 'place', '--vm', 'web-1', '--dir', await image(fed, 'web-1', 6 * 1024 * 1024))).json, { outcome: 'migrated', local: true }, 'web-1 placed on a host of A')
  t.match((await fed.cli('site-a', 'place', '--vm', 'web-2', '--dir', await image(fed, 'web-2', 64 * 1024))).json, { outcome: 'migrated', local: true }, 'web-2 placed on A\'s other host')
  t.match((await fed.cli('site-a', 'migrate', '--vm', 'web-2', '--to', 'site-b')).json, { outcome: 'migrated', destination: 'site-b' }, 'web-2 moved to partner B')
  const web1Host = ['alpha-1', 'alpha-2'].find((h) => existsSync(join(fed.vmDir('site-a', h), 'web-1')))!
  t.ok(web1Host, `web-1 is on ${web1Host}`)

  const now = Date.now()
  const sealedRevenue = (await seal(Buffer.from('4711.5'), decodeKey('sealPublicKey', a.keys.sealPublicKey))).toString('base64')
  const web1: Delivery[] = [
    ...[40, 52, 61, 58].map((value, i) => processed('web-1', i, now - 8000 + i * 1000, value)),
    { id: 'web-1-load', vm: 'web-1', metric: LOAD, format: 'raw', from: now - 6000, to: now - 4000, samples: [{ ts: now - 6000, value: 0.5 }, { ts: now - 5000, value: 0.75 }, { ts: now - 4000, value: 0.25 }] },
    { id: 'web-1-revenue', vm: 'web-1', metric: REVENUE, format: 'raw', from: now - 3000, to: now - 3000, sealed: sealedRevenue },
  ]
  const web2 = [900, 1250, 1300].map((value, i) => processed('web-2', i, now - 5000 + i * 1000, value))
  t.equal((await postIngest(ingestUrl(a.config), web1)).status, 200, 'web-1\'s deliveries into A\'s ingest')
  t.equal((await postIngest(ingestUrl(b.config), web2)).status, 200, 'web-2\'s into B\'s, relayed to A')
  const stores = new MonitoringStores(fed)
  await waitFor('every delivery in A\'s store', () => stores.deliveries('site-a').length === web1.length + web2.length, 30_000)
  await fed.daemon('site-a').waitForEvent((e) => e.event === 'rule-fired' && e.vm === 'web-2', 30_000)

  t.equal(await statusOf(`http://${dashboardA}/`), 401, 'A\'s dashboard answers 401 without credentials')
  t.equal(await statusOf(`http://${dashboardA}/api/overview`), 401, 'and so does its JSON')

  const browser = await launchChromium(t)
  const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
  await page.goto(`http://${dashboardA}/`)
  await page.waitForFunction(() => (window as any).fedvmDashboard?.state.polls > 0, undefined, { timeout: 20_000 })

  // Each chart holds exactly the points A stored (sealed ones opened with A's seal key).
  const expected = storedPoints(stores.deliveries('site-a'), { 'web-1-revenue': 4711.5 })
  await page.waitForFunction((n) => (window as any).fedvmDashboard.charts.size === n, expected.size, { timeout: 20_000 })
  const charts = new Map(await page.evaluate(() => [...(window as any).fedvmDashboard.charts].map(([key, chart]: [string, any]) => [key, [...chart.data[0]].map((ts: number, i: number) => [ts, chart.data[1][i]])])) as Array<[string, Array<[number, number]>]>)
  t.same([...charts.keys()].sort(), [...expected.keys()].sort(), 'one chart per VM, metric and selector')
  for (const [key, points] of expected) t.same(charts.get(key), points, `chart ${key.replaceAll('\u0000', ' ')} holds the stored points`)

  t.same(await rowTexts(page, '#vms'), [['web-1', `host ${web1Host}`, '', ''], ['web-2', 'partner site-b', '', '']], 'where each VM is: a host here, or only the partner')
  t.match(await rowTexts(page, '#firings'), [[/^\d{4}-/, 'too-busy', 'web-2', `${USERS} > 1000`, 'log']], 'the rule\'s firing')
  t.equal(await page.textContent('figure.chart[data-key*="revenue"] p.note'), '1 point opened with this site\'s seal key', 'the sealed KPI says it was opened here')

  // What the page and its JSON showed, kept to look for B's internals in at the end.
  const shown: string[] = []
  const snapshot = async (): Promise<void> => {
    shown.push(await page.evaluate(() => document.documentElement.outerHTML), await page.evaluate(() => document.body.innerText),
      await fetchJson(page, 'api/overview'), await fetchJson(page, 'api/kpis?vm=web-1'), await fetchJson(page, 'api/kpis?vm=web-2'))
  }
  const bar = page.locator('#migrations progress[data-vm="web-1"]')
  const reading = async (): Promise<number | undefined> => {
    const value = await bar.evaluate((p: HTMLProgressElement) => p.hasAttribute('value') && p.max > 1 ? p.value : undefined).catch(() => undefined)
    return value === undefined || value <= 0 ? undefined : value
  }
  const barMoves = async (what: string): Promise<void> => {
    const first = await waitFor(`a progress bar with bytes for web-1 (${what})`, reading, 30_000, 100)
    const second = await waitFor(`the bar to move (${what})`, async () => { const v = await reading(); return v !== undefined && v !== first ? v : undefined }, 30_000, 100)
    t.ok(second > first, `${what}: the bar moved, ${first} → ${second} of ${await bar.evaluate((p: HTMLProgressElement) => p.max)} bytes`)
  }

  // A migration with a throttled transfer at A: A's page shows a bar that moves.
  const migrating = fed.cli('site-a', 'migrate', '--vm', 'web-1')
  await barMoves('to A\'s other host, the data moving at A')
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
  await snapshot()
  const moved = await migrating
  t.match(moved.json, { outcome: 'migrated', local: true, digestsAgree: true }, `web-1 moved to A's other host ${moved.raw.stderr}`)
  const otherHost = web1Host === 'alpha-1' ? 'alpha-2' : 'alpha-1'
  await waitFor('the page to show web-1 on its new host and no migration', async () => {
    const rows = await rowTexts(page, '#vms')
    return rows[0]?.[1] === `host ${otherHost}` && (await rowTexts(page, '#migrations'))[0]?.[0] === 'none running'
  }, 20_000, 100)

  // Then to partner B: the data moves at B, and A's bar moves with the figures B's end reports to A's Controller.
  const leaving = fed.cli('site-a', 'migrate', '--vm', 'web-1', '--to', 'site-b')
  await barMoves('to partner B, figures from B')
  await snapshot()
  t.match((await leaving).json, { outcome: 'migrated', destination: 'site-b', digestsAgree: true }, 'web-1 moved to B')
  await waitFor('the page to show web-1 at partner B', async () => (await rowTexts(page, '#vms'))[0]?.[1] === 'partner site-b', 20_000, 100)
  await snapshot()

  // Nothing of B's internals: its hosts, addresses, proxy, ingest, TLS fingerprint, keys.
  const partnerInternals = ['bravo-host', '127.0.0.92', b.keys.tlsFingerprint, b.keys.tlsFingerprint.replace(/:/g, ''), b.keys.publicKey, b.keys.sealPublicKey, sealedRevenue]
  const text = shown.join('\n').toLowerCase()
  for (const secret of partnerInternals) t.notOk(text.includes(secret.toLowerCase()), `the page and its JSON never held ${secret.slice(0, 16)}…`)
  t.same(problems, [], 'no script errors or CSP refusals in the page')

  // B's own page, on loopback without a web config, lists web-2 on its host, delegated by A.
  const overviewB = JSON.parse(await getText(`http://${dashboardB}/api/overview`))
  t.match(overviewB.vms, [
    { vmId: 'web-1', where: { kind: 'host', host: 'bravo-host-1' }, delegatedBy: 'site-a' },
    { vmId: 'web-2', where: { kind: 'host', host: 'bravo-host-1' }, delegatedBy: 'site-a' },
  ], 'B shows its own host')
  t.equal(await statusOf(`http://${dashboardB}/api/kpis?vm=web-9`), 404, 'a VM the site does not list is a 404')
  t.equal(await statusOf(`http://${dashboardB}/api/overview`, 'POST'), 405, 'the dashboard is read-only')
  t.equal(await statusOf(`http://${dashboardB}/api/overview`, 'GET', { host: `rebound.example:${dashboardB.split(':')[1]}` }), 421, 'without basic auth, a request naming the page by another name (DNS rebinding) is refused')
  await context.close()
})

function processed (vm: string, i: number, to: number, value: number): Delivery {
  return { id: `${vm}-users-${i}`, vm, metric: USERS, format: 'processed', function: 'median', from: to - 1000, to, value }
}

async function image (fed: Federation, vm: string, bytes: number): Promise<string> {
  const dir = join(fed.root, `image-${vm}`)
  await makeVmDir(dir, { 'disk.img': bytes })
  return dir
}

function ingestUrl (config: Record<string, any>): string {
  return `http://${config.monitoring.ingest as string}/v1/deliveries`
}

/** The points each chart should hold (key VM␀metric␀selector), from the deliveries as stored; `opened` gives sealed ones' plaintext. */
function storedPoints (deliveries: Delivery[], opened: Record<string, number>): Map<string, Array<[number, number]>> {
  const result = new Map<string, Array<[number, number]>>()
  const add = (d: Delivery, selector: string, ts: number, value: number): void => {
    const key = `${d.vm}\u0000${d.metric}\u0000${selector}`
    result.set(key, [...(result.get(key) ?? []), [ts, value]])
  }
  for (const d of deliveries) {
    if (d.sealed !== undefined) add(d, 'raw', d.from, opened[d.id])
    else if (d.format === 'processed') add(d, d.function!, d.to, d.value!)
    else for (const s of d.samples!) add(d, 'raw', s.ts, Number(s.value))
  }
  for (const points of result.values()) points.sort((x, y) => x[0] - y[0])
  return result
}

async function rowTexts (page: Page, tbody: string): Promise<string[][]> {
  return await page.$$eval(`${tbody} tr`, (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')))
}

async function fetchJson (page: Page, path: string): Promise<string> {
  return await page.evaluate(async (p) => await (await fetch(p)).text(), path)
}

function statusOf (url: string, method = 'GET', headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { method, headers }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end()
  })
}

function getText (url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
}
