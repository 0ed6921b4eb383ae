import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Delivery } from '../../../protocol/relay/delivery'
import { DEAD_LETTER_GAUGE } from '../../../protocol/relay/relay-metrics'
import { seriesValue } from '../../agent/support/agent-process'
import { Federation, freePort } from '../support/federation'
import { runFedvm } from '../support/fedvm-process'
import { postIngest } from '../support/monitoring-stores'
import { makeVmDir } from '../support/vm-files'
import { waitFor } from '../../support/wait'

// Two real site daemons: web-1 is placed at A (its primary) and runs at B, so B relays its
// monitoring to A. A is stricter about clocks (1 s) than B (60 s): a delivery whose data time is a
// few seconds ahead passes B and is refused for good by A, and B sets it apart. B's operator lists
// it with `fedvm site dead-letters`, and once the clocks agree (the data time has passed) requeues
// it, beside the running daemon (sent without a restart) and while the daemon is stopped (sent
// when it starts); each arrives at A once. B's /metrics counts the dead deliveries per next hop,
// also after the CLI's requeue in its own process.

const VM = 'web-1'
/** How far ahead the refused deliveries are: past A's 1 s, well within B's 60 s. */
const AHEAD_MS = 3000

function delivery (id: string, to: number): Delivery {
  return { id, vm: VM, metric: 'kpi:load.requests', format: 'processed', function: 'mean', from: to - 10, to, value: 4711 }
}

t.test('a relay site\'s dead rows: listed with the hop\'s reason, requeued beside the running daemon and while it is stopped', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.93', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], policy: { delegate: true, expose: 'all', acceptFrom: [], prefer: ['site-b'] }, monitoring: { maxClockSkewMs: 1000 } },
    { id: 'site-b', ip: '127.0.0.94', hosts: [{ id: 'b1', maxVms: 1 }], partners: ['site-a'], monitoring: { ingest: true, metricsListen: `127.0.0.94:${await freePort('127.0.0.94')}` } },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 64 * 1024 })
  t.match((await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)).json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 runs at B for A')
  const b = fed.site('site-b')
  const ingest = `http://${(b.config.monitoring as { ingest: string }).ingest}/v1/deliveries`
  const deadLetters = async (...args: string[]) => {
    const raw = await runFedvm(['site', 'dead-letters', '--config', b.configFile, ...args])
    return { ...raw, lines: raw.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>) }
  }
  const storedAtA = async (): Promise<string[]> => {
    const raw = await runFedvm(['monitor', 'query', '--config', fed.site('site-a').configFile, '--vm', VM])
    return raw.code === 0 ? (JSON.parse(raw.stdout).deliveries as Array<{ id: string }>).map((d) => d.id).sort() : []
  }
  const refused = (id: string) => fed.daemon('site-b').waitForEvent((e) => e.event === 'monitoring-delivery-refused' && e.id === id, 20_000)
  const scrape = async () => (await fetch(`http://${(b.config.monitoring as { metricsListen: string }).metricsListen}/metrics`)).text()
  const deadGauge = async () => seriesValue(await scrape(), DEAD_LETTER_GAUGE, { next_hop: 'site-a' })
  const gaugeAt = (n: number) => waitFor(`${DEAD_LETTER_GAUGE}{next_hop="site-a"} ${n}`, async () => (await deadGauge()) === n, 10_000, 100)

  await t.test('A refuses one delivery for good: B keeps it apart, the listing shows it with A\'s reason and no values', async (t) => {
    const now = Date.now()
    t.match(await postIngest(ingest, [delivery('ok-1', now), delivery('ahead-1', now + AHEAD_MS)]), { status: 200, json: { accepted: 2 } }, 'B takes both')
    await refused('ahead-1')
    await waitFor('ok-1 at A', async () => (await storedAtA()).includes('ok-1'), 15_000)
    const listed = await deadLetters()
    t.equal(listed.code, 0, listed.stderr)
    t.equal(listed.lines.length, 1)
    t.match(listed.lines[0], { seq: Number, nextHop: 'site-a', count: 1, bytes: Number, code: 'bad-request', detail: /^deliveries\[1\]\.to: data time .* ahead of this site's clock; at most 1 s is allowed$/, ids: ['ahead-1'], vms: [VM] })
    t.ok(Date.parse(listed.lines[0].deadAt) >= now, 'when it was set apart')
    t.notMatch(listed.stdout, /4711|"value"|"samples"/, 'no delivery values printed')
    t.same((await deadLetters('--next-hop', 'site-c')).lines, [], '--next-hop narrows it')
    t.same(await storedAtA(), ['ok-1'], 'A never stored it')
    await gaugeAt(1)
    t.match(await scrape(), new RegExp(`# HELP ${DEAD_LETTER_GAUGE} .*\`fedvm site dead-letters\``), 'its help says what to do')
  })

  await t.test('the operator\'s mistakes move nothing', async (t) => {
    const [seq] = (await deadLetters()).lines.map((l) => l.seq as number)
    const unknown = await deadLetters('--requeue', '--id', String(seq), '--id', '99999')
    t.equal(unknown.code, 1)
    t.match(unknown.stderr, /no dead row 99999 to requeue.*nothing requeued/)
    const stranger = await deadLetters('--requeue', '--all', '--next-hop', 'site-zz')
    t.equal(stranger.code, 1)
    t.match(stranger.stderr, /--next-hop site-zz: the config has no such partner \(it has: site-a\)/)
    const neither = await deadLetters('--requeue')
    t.equal(neither.code, 2, 'a usage error')
    t.match(neither.stderr, /either the rows named with --id N .* or --all/)
    const otherCode = await deadLetters('--requeue', '--all', '--reason', 'stale-timestamp')
    t.equal(otherCode.code, 0, otherCode.stderr)
    t.same(otherCode.lines, [])
    t.match(otherCode.stderr, /nothing requeued: no dead row for site-a refused with code stale-timestamp/, 'a code no dead row has: said so')
    const reasonAlone = await deadLetters('--reason', 'bad-request')
    t.equal(reasonAlone.code, 2)
    t.match(reasonAlone.stderr, /--id, --all and --reason choose what --requeue moves/)
    t.same((await deadLetters()).lines.map((l) => l.seq), [seq], 'still set apart')
  })

  await t.test('requeued beside the running daemon once the clocks agree: sent without a restart, once', async (t) => {
    const [row] = (await deadLetters()).lines
    await waitFor('the data time to pass at A', () => Date.now() > Date.parse(row.deadAt) + AHEAD_MS + 1500, 10_000, 100)
    const requeue = await deadLetters('--requeue', '--id', String(row.seq), '--reason', 'bad-request')
    t.equal(requeue.code, 0, requeue.stderr)
    t.match(requeue.lines, [{ requeued: row.seq, nextHop: 'site-a', count: 1 }])
    t.match(requeue.stderr, /1 row \(1 delivery\) moved back to the end of the queue/)
    t.ok(requeue.lines[0].queuedAs > row.seq, 'queued anew at the end')
    await waitFor('ahead-1 at A', async () => (await storedAtA()).includes('ahead-1'), 15_000, 200)
    t.same((await deadLetters()).lines, [], 'no dead row left')
    await gaugeAt(0)
    t.ok(fed.daemon('site-b').alive, 'the same daemon throughout')
  })

  await t.test('requeued while the daemon is stopped: in the queue, never in both; sent when it starts', async (t) => {
    t.equal((await postIngest(ingest, [delivery('ahead-2', Date.now() + AHEAD_MS)])).status, 200)
    await refused('ahead-2')
    const [row] = (await deadLetters()).lines
    t.match(row, { ids: ['ahead-2'], code: 'bad-request' })
    await gaugeAt(1)
    await fed.stop('site-b')
    await waitFor('the data time to pass at A', () => Date.now() > Date.parse(row.deadAt) + AHEAD_MS + 1500, 10_000, 100)
    const requeue = await deadLetters('--requeue', '--all', '--next-hop', 'site-a')
    t.equal(requeue.code, 0, requeue.stderr)
    t.match(requeue.lines, [{ requeued: row.seq, nextHop: 'site-a', count: 1 }])
    const db = new Database(join(b.dir, 'state', 'monitoring.db'), { readonly: true })
    t.same(db.prepare('SELECT "seq", "dead", "count" FROM "outbox"').all(), [{ seq: requeue.lines[0].queuedAs, dead: 0, count: 1 }], 'one queued row, no dead one')
    db.close()
    await fed.start('site-b')
    await waitFor('ahead-2 at A', async () => (await storedAtA()).includes('ahead-2'), 15_000, 200)
    t.same(await storedAtA(), ['ahead-1', 'ahead-2', 'ok-1'], 'each delivery stored once')
    t.same((await deadLetters()).lines, [])
    t.equal(await deadGauge(), 0, 'none after the restart')
  })
})
