import t from 'tap'
import { join } from 'node:path'
import { Federation } from '../protocol/support/federation'
import { runFedvmOnTerminal } from '../protocol/support/fedvm-terminal'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'
import { waitFor } from '../support/wait'

const MiB = 1024 * 1024
/** site-c's proxy serves at most this: the 32 MiB VM takes about 8 s to move between its hosts, in 1 MiB chunks. */
const CAP = 4 * MiB
const SIZE = 32 * MiB

// What the Controller's user sees while a migration runs: A asks, the VM moves between C's two hosts
// (through B), and A learns how far it has got without learning where. `fedvm migrate` under a real
// pseudo-terminal draws a progress line; piped or with --json it prints the JSON outcome alone.
t.test('migration progress at the Controller: the terminal line, site status, and pure JSON when piped', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.151', partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.152', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-c', ip: '127.0.0.153', hosts: [{ id: 'c1', maxVms: 1 }, { id: 'c2', maxVms: 1 }], partners: ['site-b'], maxBytesPerSecond: CAP, limits: { chunkBytes: MiB } },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': SIZE, 'domain.xml': 700 })
  const placed = await fed.cli('site-a', 'place', '--vm', 'web-1', '--dir', image)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-b' }, 'placed at site-c through site-b (A\'s own proxy serves it: not throttled)')
  const hostOf = async (): Promise<string> => (await fed.cli('site-c', 'status')).json.locations.find((l: { vmId: string }) => l.vmId === 'web-1').target

  await t.test('on a terminal: a redrawn line whose percentage moves, then the outcome; site status shows the same', async (t) => {
    const from = await hostOf()
    const started = Date.now()
    const migrate = runFedvmOnTerminal(['migrate', '--config', fed.site('site-a').configFile, '--vm', 'web-1'])
    t.teardown(migrate.stop)

    // While it runs: A's status (JSON when piped) holds the figures C reported, and nothing of C.
    const running = await waitFor('site-a to hold figures of the running migration', async () => {
      const status = (await fed.cli('site-a', 'status')).json
      const m = status?.migrations?.find((x: { vmId: string }) => x.vmId === 'web-1')
      // A first chunk in: the pull has a rate to tell (the first bytes, domain.xml's, come in a few ms).
      return m?.progress?.phase === 'transfer' && m.progress.remainingBytes <= m.progress.totalBytes - MiB ? status : undefined
    }, 30_000, 100, migrate.output)
    const migration = running.migrations.find((x: { vmId: string }) => x.vmId === 'web-1')
    t.match(migration, { vmId: 'web-1', since: Number, progress: { path: 'cold', phase: 'transfer', totalBytes: SIZE + 700, rateBytesPerSecond: Number } }, `A's status: ${JSON.stringify(migration)}`)
    t.ok(migration.progress.rateBytesPerSecond > 0 && migration.progress.rateBytesPerSecond <= CAP * 1.25, 'a rate within the source proxy\'s cap')
    t.ok(migration.progress.etaMs > 0, 'and an ETA')
    t.notMatch(JSON.stringify(running.migrations), /site-c|c1|c2|127\.0\.0\.153/, 'A learns figures, never where the VM goes or comes from')
    // Both asked at once: the transfer has a few seconds left.
    const [atC, human] = await Promise.all([
      fed.cli('site-c', 'status').then((c) => c.json.transfers.find((x: { vmId: string }) => x.vmId === 'web-1')),
      (async () => {
        const run = runFedvmOnTerminal(['site', 'status', '--config', fed.site('site-a').configFile])
        t.teardown(run.stop)
        return { code: await run.exited, output: run.output() }
      })(),
    ])
    t.match(atC, { vmId: 'web-1', path: 'cold', phase: 'transfer' }, 'the Destination, C, reports the pull it runs')
    t.equal(human.code, 0, human.output)
    t.match(human.output, /site site-a\r\nVMs:\r\n {2}web-1: partner site-b\r\nmigrating \(this site is the Controller\):\r\n {2}web-1: Migration: \[ *\d+ %\] transfer, [\d.]+ MiB of 32\.0 MiB left, [\d.]+ MiB\/s, ETA \d+ s\r\n/, 'site status on a terminal: a line for the running migration')

    t.equal(await migrate.exited, 0, migrate.output())
    const ms = Date.now() - started
    const output = migrate.output()
    const percents = [...output.matchAll(/\rMigration: \[ *(\d+) %\]/g)].map((m) => Number(m[1]))
    t.ok(percents.length >= 3, `the line was redrawn (${percents.length} times in ${ms} ms: ${percents.join(' ')})`)
    t.ok(percents.every((p, i) => i === 0 || p >= percents[i - 1]), 'its percentage never goes back')
    t.ok(new Set(percents.filter((p) => p > 0 && p < 100)).size >= 3, 'and moves through at least three values between 0 and 100')
    t.equal(percents[percents.length - 1], 100, 'it ends at 100 %')
    t.match(output, /\rMigration: \[100 %\] done, 0\.0 MiB of 32\.0 MiB left[^\r\n]*\r\n\{/, 'a newline ends the line, and the outcome follows')
    t.match(JSON.parse(output.slice(output.indexOf('{')).replaceAll('\r\n', '\n')), { vm: 'web-1', outcome: 'migrated', destination: 'site-b', digestsAgree: true })
    const json = runFedvmOnTerminal(['site', 'status', '--config', fed.site('site-a').configFile, '--json'])
    t.teardown(json.stop)
    t.equal(await json.exited, 0, json.output())
    t.match(JSON.parse(json.output().replaceAll('\r\n', '\n')), { id: 'site-a', locations: [{ vmId: 'web-1', kind: 'partner', target: 'site-b' }], migrations: [], transfers: [] }, 'site status --json on a terminal: JSON')
    const to = await hostOf()
    t.not(to, from, `the VM moved between C's hosts (${from} → ${to})`)
    t.same(await digestsOf(join(fed.vmDir('site-c', to), 'web-1')), digests, 'byte for byte')
    t.same((await fed.cli('site-a', 'status')).json.migrations, [], 'once it is over A lists no running migration')
    for (const id of ['site-a', 'site-b', 'site-c']) {
      const events = fed.daemon(id).events()
      t.notOk(events.some((e) => e.op === 'migration-progress'), `${id}: the polling is neither refused nor logged request by request`)
    }
  })

  await t.test('piped, and with --json on a terminal: the JSON outcome alone', async (t) => {
    const piped = await fed.cli('site-a', 'migrate', '--vm', 'web-1')
    t.equal(piped.code, 0, piped.raw.stderr)
    t.match(piped.json, { vm: 'web-1', outcome: 'migrated', digestsAgree: true }, 'stdout is one JSON document')
    t.notMatch(piped.raw.stdout + piped.raw.stderr, /Migration:|\r/, 'and nothing else')

    const json = runFedvmOnTerminal(['migrate', '--config', fed.site('site-a').configFile, '--vm', 'web-1', '--json'])
    t.teardown(json.stop)
    t.equal(await json.exited, 0, json.output())
    t.notMatch(json.output(), /Migration:/, '--json draws no line')
    t.match(JSON.parse(json.output().replaceAll('\r\n', '\n')), { vm: 'web-1', outcome: 'migrated' }, 'only the outcome')
  })
})
