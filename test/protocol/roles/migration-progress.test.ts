import t from 'tap'
import { progressLine } from '../../../host/libvirt/live-progress'
import { ProtocolError } from '../../../protocol/errors'
import { coldProgress, ProgressBoard, type MigrationProgress } from '../../../protocol/roles/migration-progress'
import type { MigrationRecord } from '../../../protocol/roles/migration-record'
import { handleMigrationProgress } from '../../../protocol/roles/progress-query'
import { chooseAnswer, watchProgress } from '../../../protocol/roles/progress-watch'
import type { RouteRecord } from '../../../protocol/roles/records'
import { LiveSessions } from '../../../protocol/roles/live-sessions'
import { ActiveMigrations } from '../../../protocol/roles/active-migrations'
import type { TokenRecord } from '../../../protocol/proxy/token-record'
import { showProgressWhile } from '../../../protocol/site/progress-display'
import { statusText, type SiteStatus } from '../../../protocol/site/site-status'

const MiB = 1024 * 1024
const cold = (remainingBytes: number, extra: Partial<MigrationProgress> = {}): MigrationProgress =>
  ({ path: 'cold', phase: 'transfer', totalBytes: 20 * MiB, remainingBytes, rateBytesPerSecond: 4 * MiB, etaMs: remainingBytes / 4 / MiB * 1000, at: 1, ...extra })

t.test('coldProgress: amounts left, the average rate of what was fetched, an ETA once there is a rate', async (t) => {
  t.same(coldProgress({ totalBytes: 10 * MiB, fetchedBytes: 700, reusedBytes: 0 }, 25, 5), { path: 'cold', phase: 'transfer', totalBytes: 10 * MiB, remainingBytes: 10 * MiB - 700, rateBytesPerSecond: 0, at: 5 }, 'a few bytes in a few ms: no rate, no ETA')
  t.same(coldProgress({ totalBytes: 10 * MiB, fetchedBytes: 2 * MiB, reusedBytes: 4 * MiB }, 500, 5), { path: 'cold', phase: 'transfer', totalBytes: 10 * MiB, remainingBytes: 4 * MiB, rateBytesPerSecond: 4 * MiB, etaMs: 1000, at: 5 }, 'reused bytes are done but not in the rate')
  t.match(coldProgress({ totalBytes: 10 * MiB, fetchedBytes: 1000, reusedBytes: 0 }, 2000, 5), { rateBytesPerSecond: 500 }, 'after a second the rate is given however little came')
  t.match(coldProgress({ totalBytes: MiB, fetchedBytes: MiB, reusedBytes: 0 }, 1000, 5), { phase: 'done', remainingBytes: 0, etaMs: 0 })
})

t.test('progressLine: the same line for a cold and a live migration, the live one with its pass and dirty rate', async (t) => {
  t.equal(progressLine(cold(5 * MiB)), 'Migration: [ 75 %] transfer, 5.0 MiB of 20.0 MiB left, 4.0 MiB/s, ETA 2 s')
  t.equal(progressLine(cold(5 * MiB, { etaMs: undefined, rateBytesPerSecond: 0 })), 'Migration: [ 75 %] transfer, 5.0 MiB of 20.0 MiB left, 0.0 MiB/s, ETA ?')
  const live: MigrationProgress = { ...cold(MiB), path: 'live', phase: 'memory', iteration: 3, dirtyPagesPerSecond: 250 }
  t.equal(progressLine(live), 'Migration: [ 95 %] memory, 1.0 MiB of 20.0 MiB left, 4.0 MiB/s, ETA 1 s, pass 3, dirty 250 pages/s')
})

t.test('statusText: a line per VM and per running migration, as on a terminal', async (t) => {
  const status: SiteStatus = {
    id: 'site-a',
    locations: [{ vmId: 'web-1', kind: 'partner', target: 'site-b', upstream: null }, { vmId: 'db-1', kind: 'host', target: 'a1', upstream: 'site-z' }],
    migrations: [
      { vmId: 'web-1', since: 1000, progress: cold(10 * MiB) },
      { vmId: 'db-1', since: 1000, progress: null },
      { vmId: 'vm-9', since: 1000, progress: { ...cold(2 * MiB), path: 'live', phase: 'memory', iteration: 2, dirtyPagesPerSecond: 180 } },
    ],
    transfers: [{ vmId: 'app-2', ...cold(15 * MiB) }],
    arrivals: [
      { vmId: 'app-4', since: 1400, phase: 'receiving', receivedBytes: { memory: 3 * MiB, disks: 12 * MiB }, rateBytesPerSecond: 5 * MiB, at: 4400 },
      { vmId: 'app-5', since: 4000, phase: 'prepared', receivedBytes: { memory: 0, disks: 0 }, rateBytesPerSecond: 0, at: 4400 },
    ],
    inDoubt: [{ vmId: 'app-3', state: 'incoming, in doubt' }],
  }
  t.equal(statusText(status, 4400), [
    'site site-a',
    'VMs:',
    '  web-1: partner site-b',
    '  db-1: host a1 (from site-z)',
    'migrating (this site is the Controller):',
    '  web-1: Migration: [ 50 %] transfer, 10.0 MiB of 20.0 MiB left, 4.0 MiB/s, ETA 3 s',
    '  db-1: Migration: waiting for figures (running 3 s)',
    '  vm-9: Migration: [ 90 %] memory, 2.0 MiB of 20.0 MiB left, 4.0 MiB/s, ETA 1 s, pass 2, dirty 180 pages/s',
    'data moving here:',
    '  app-2: Migration: [ 25 %] transfer, 15.0 MiB of 20.0 MiB left, 4.0 MiB/s, ETA 4 s (cold)',
    'arriving live here:',
    '  app-4: Arrival: receiving, memory 3.0 MiB, disks 12.0 MiB received, 5.0 MiB/s (for 3 s)',
    '  app-5: Arrival: prepared, waiting for the stream, memory 0.0 MiB, disks 0.0 MiB received, 0.0 MiB/s (for 0 s)',
    'arrived, waiting for the Controller\'s decision:',
    '  app-3: incoming, in doubt',
    '',
  ].join('\n'))
})

/** A partner client whose answers the test gives, one call at a time. */
class ScriptedPartners {
  readonly calls: Array<{ to: string, op: string, body: any, ref?: string, quiet?: boolean, answer: (value: unknown) => void, fail: (err: Error) => void }> = []
  private waiting: Array<() => void> = []
  ids (): string[] { return ['site-b', 'site-s'] }
  send (to: string, op: string, body: unknown, _caller: unknown, options: { ref?: string, quiet?: boolean } = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.calls.push({ to, op, body, ref: options.ref, quiet: options.quiet, answer: resolve, fail: reject })
      for (const wake of this.waiting.splice(0)) wake()
    })
  }

  /** Resolves once `count` calls have been made in all. */
  async made (count: number): Promise<void> {
    while (this.calls.length < count) await new Promise<void>((resolve) => this.waiting.push(resolve))
  }
}

function watchDeps (partners: ScriptedPartners): { active: ActiveMigrations, events: Array<Record<string, unknown>>, deps: Parameters<typeof watchProgress>[0] } {
  const active = new ActiveMigrations()
  const events: Array<Record<string, unknown>> = []
  return {
    active,
    events,
    deps: { self: 'site-a', partners, tokens: { token: () => undefined }, routes: { route: () => undefined }, progress: new ProgressBoard(), live: new LiveSessions(), active, log: (e) => { events.push(e) } },
  }
}

const migration: MigrationRecord = {
  id: 'm1', vmId: 'web-1', via: 'site-b', offerRef: 'offer-ref', sourceVia: 'site-s', sourceToken: 'source-token', decision: 'undecided',
  destinationSettled: false, sourceSettled: false, upstream: null, descriptor: null, createdAt: 0,
}

t.test('watchProgress: asks both ends along their chains, then only the end that has figures', async (t) => {
  const partners = new ScriptedPartners()
  const { active, deps } = watchDeps(partners)
  active.enter('web-1', 1000)
  const stop = watchProgress(deps, migration, { intervalMs: 0 })
  t.teardown(stop)
  await partners.made(2)
  const [destination, source] = partners.calls
  t.match(destination, { to: 'site-b', op: 'migration-progress', body: { vmId: 'web-1', end: 'destination' }, ref: 'offer-ref', quiet: true }, 'the Destination end by the offer\'s ref, through the partner whose offer it was')
  t.match(source, { to: 'site-s', op: 'migration-progress', body: { vmId: 'web-1', end: 'source', token: 'source-token' } }, 'the Source end by its token, through the partner the VM was delegated to')
  destination.answer({ progress: cold(10 * MiB) })
  source.answer({ progress: null })
  await partners.made(3)
  t.same(active.list(), [{ vmId: 'web-1', since: 1000, progress: cold(10 * MiB) }], 'the figures are kept')
  t.equal(partners.calls[2].to, 'site-b', 'then only the end with figures is asked')
  partners.calls[2].answer({ progress: null })
  await partners.made(5)
  t.same(new Set(partners.calls.slice(3).map((c) => c.to)), new Set(['site-b', 'site-s']), 'an end with nothing moving any more: both are asked again')
  t.same(active.list()[0].progress, null)
})

t.test('chooseAnswer: a cold transfer\'s figures are the Destination\'s; a live migration\'s the Source\'s, the Destination\'s only when the Source gives none', async (t) => {
  const fromSource: MigrationProgress = { ...cold(3 * MiB), path: 'live', phase: 'memory', iteration: 2, dirtyPagesPerSecond: 40 }
  const fromDestination: MigrationProgress = { ...cold(9 * MiB), path: 'live', phase: 'memory' }
  const cases: Array<[string, boolean, Array<['destination' | 'source', MigrationProgress | null | undefined]>, ReturnType<typeof chooseAnswer>]> = [
    ['cold: the Destination\'s pull', false, [['destination', cold(MiB)], ['source', null]], { end: 'destination', progress: cold(MiB) }],
    ['cold: figures from either end over a null', false, [['destination', null], ['source', cold(MiB)]], { end: 'source', progress: cold(MiB) }],
    ['cold: nothing moves', false, [['destination', null], ['source', undefined]], { end: 'destination', progress: null }],
    ['cold: no answer keeps the last', false, [['destination', undefined], ['source', undefined]], undefined],
    ['live: both have figures, the Source\'s libvirt job wins', true, [['destination', fromDestination], ['source', fromSource]], { end: 'source', progress: fromSource }],
    ['live: the Source\'s job not begun or over, its null wins over the Destination\'s estimate', true, [['destination', fromDestination], ['source', null]], { end: 'source', progress: null }],
    ['live: the Source unreachable, the Destination\'s figures stand in', true, [['destination', fromDestination], ['source', undefined]], { end: 'destination', progress: fromDestination }],
    ['live: the Source unreachable, the Destination has nothing either', true, [['destination', null], ['source', undefined]], { end: 'destination', progress: null }],
    ['live: only the Source asked (it answered last time), and it gave no answer', true, [['source', undefined]], undefined],
  ]
  for (const [what, live, answers, expected] of cases) {
    t.same(chooseAnswer(live, answers.map(([end, progress]) => ({ end, progress }))), expected, what)
  }
})

t.test('watchProgress, live: the Source\'s figures are kept over the Destination\'s, which serve only while the Source does not answer', async (t) => {
  const partners = new ScriptedPartners()
  const { active, deps } = watchDeps(partners)
  active.enter('web-1', 1000)
  const stop = watchProgress(deps, { ...migration, live: 'prepared' }, { intervalMs: 0 })
  t.teardown(stop)
  const fromSource: MigrationProgress = { ...cold(3 * MiB), path: 'live', phase: 'memory', iteration: 2, dirtyPagesPerSecond: 40 }
  const fromDestination: MigrationProgress = { ...cold(9 * MiB), path: 'live', phase: 'memory' }
  await partners.made(2)
  partners.calls[0].answer({ progress: fromDestination })
  partners.calls[1].answer({ progress: fromSource })
  await partners.made(3)
  t.same(active.list()[0].progress, fromSource, 'the Source\'s libvirt figures, with the pass, though the Destination (asked first) answered too')
  t.equal(partners.calls[2].to, 'site-s', 'then only the Source is asked')
  partners.calls[2].fail(new ProtocolError('partner-unreachable', 'site-s did not answer'))
  await partners.made(5)
  t.same(active.list()[0].progress, fromSource, 'a round without the Source\'s answer keeps its last figures')
  t.same(partners.calls.slice(3).map((c) => c.to).sort(), ['site-b', 'site-s'], 'and the next round asks both')
  partners.calls[3].answer({ progress: fromDestination })
  partners.calls[4].fail(new ProtocolError('partner-unreachable', 'site-s did not answer'))
  await partners.made(7)
  t.same(active.list()[0].progress, fromDestination, 'the Source still silent: the Destination\'s figures stand in')
  t.same(partners.calls.slice(5).map((c) => c.to).sort(), ['site-b', 'site-s'], 'and the Source is asked again')
  partners.calls[5].answer({ progress: fromDestination })
  partners.calls[6].answer({ progress: fromSource })
  await partners.made(8)
  t.same(active.list()[0].progress, fromSource, 'the Source back: its figures again')
})

t.test('watchProgress: a partner down costs only figures; one that does not know the query is not asked again; a malformed answer is no figures', async (t) => {
  const partners = new ScriptedPartners()
  const { active, events, deps } = watchDeps(partners)
  active.enter('web-1', 1000)
  active.report('web-1', cold(12 * MiB))
  const stop = watchProgress(deps, migration, { intervalMs: 0 })
  t.teardown(stop)
  await partners.made(2)
  partners.calls[0].fail(new ProtocolError('partner-unreachable', 'site-b did not answer'))
  partners.calls[1].fail(new ProtocolError('downstream-failed', 'further along', { downstreamCode: 'unknown-operation' }))
  await partners.made(3)
  t.equal(partners.calls[2].to, 'site-b', 'the unreachable end is asked again, the one too old for the query is not')
  t.same(active.list()[0].progress, cold(12 * MiB), 'the last figures stay while no end answers')
  partners.calls[2].fail(new ProtocolError('partner-unreachable', 'site-b did not answer'))
  await partners.made(4)
  partners.calls[3].answer({ progress: { ...cold(MiB), totalBytes: -1 } })
  await partners.made(5)
  t.same(active.list()[0].progress, cold(12 * MiB), 'a malformed answer changes nothing')
  t.same(events.filter((e) => e.event === 'progress-unavailable').map((e) => [e.end, e.code]), [['destination', 'partner-unreachable'], ['source', 'unknown-operation'], ['destination', 'bad-response']], 'logged when the reason changes, not every round')
})

t.test('watchProgress: once stopped, an answer on its way is dropped and nothing more is asked', async (t) => {
  const partners = new ScriptedPartners()
  const { active, deps } = watchDeps(partners)
  active.enter('web-1', 1000)
  const stop = watchProgress(deps, migration, { intervalMs: 0 })
  await partners.made(2)
  stop()
  partners.calls[0].answer({ progress: cold(MiB) })
  partners.calls[1].answer({ progress: null })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(active.list()[0].progress, null, 'the late answer was not kept')
  t.equal(partners.calls.length, 2, 'and no further question was sent')
})

t.test('watchProgress: stops by itself once the attempt is decided, or once the Controller let the VM go', async (t) => {
  const cases: Array<[string, (w: ReturnType<typeof watchDeps>, decision: { done: boolean }) => void, boolean]> = [
    ['still undecided (the control: the same wait sees it ask again)', () => {}, true],
    ['decided', (_w, decision) => { decision.done = true }, false],
    ['let go', (w) => { w.active.leave('web-1') }, false],
  ]
  for (const [how, end, asksAgain] of cases) {
    const partners = new ScriptedPartners()
    const w = watchDeps(partners)
    const decision = { done: false }
    w.active.enter('web-1', 1000)
    const stop = watchProgress(w.deps, migration, { decided: () => decision.done, intervalMs: 0 })
    t.teardown(stop)
    await partners.made(2)
    end(w, decision)
    partners.calls[0].answer({ progress: null })
    partners.calls[1].answer({ progress: null })
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(partners.calls.length > 2, asksAgain, `${how}: ${asksAgain ? 'asked again' : 'no question after the first round'} (${partners.calls.length} in all)`)
  }
})

t.test('migration-progress: answered from the board only for the site the offer or transfer was made for; routes are followed', async (t) => {
  const token = (role: 'source' | 'destination', requester: string): TokenRecord => ({
    token: `${role}-token`, role, proxy: 0, vmId: 'web-1', hostId: 'h1', boundTo: '', descriptor: null, manifest: null, state: 'open', expiresAt: 0, locationVersion: null, requester,
  })
  const tokens = new Map([['destination-token', token('destination', 'site-b')], ['source-token', token('source', 'site-b')]])
  const routes = new Map<string, RouteRecord>([['route-ref', { ref: 'route-ref', kind: 'offer', vmId: 'web-1', partner: 'site-c', partnerRef: 'c-ref', requester: 'site-a', locationVersion: null, expiresAt: 0 }]])
  const board = new ProgressBoard()
  const partners = new ScriptedPartners()
  const deps = { self: 'site-x', partners, tokens: { token: (k: string) => tokens.get(k) }, routes: { route: (k: string) => routes.get(k) }, progress: board, live: new LiveSessions() }
  const fromB = { sender: 'site-b' }

  t.same(await handleMigrationProgress(deps, fromB, { vmId: 'web-1', end: 'destination' }, 'destination-token'), { progress: null }, 'nothing moving yet: null')
  board.report('web-1', cold(MiB))
  t.same(await handleMigrationProgress(deps, fromB, { vmId: 'web-1', end: 'destination' }, 'destination-token'), { progress: cold(MiB) })
  t.same(await handleMigrationProgress(deps, fromB, { vmId: 'web-1', end: 'source', token: 'source-token' }, undefined), { progress: cold(MiB) }, 'the Source end answers from the same board (a live job)')
  await t.rejects(handleMigrationProgress(deps, { sender: 'site-z' }, { vmId: 'web-1', end: 'destination' }, 'destination-token'), { code: 'token-foreign' }, 'another site may not ask')
  await t.rejects(handleMigrationProgress(deps, fromB, { vmId: 'web-2', end: 'source', token: 'source-token' }, undefined), { code: 'token-foreign' }, 'nor for another VM')
  await t.rejects(handleMigrationProgress(deps, fromB, { vmId: 'web-1', end: 'source', token: 'destination-token' }, undefined), { code: 'token-unknown' }, 'a destination token does not name a Source end')
  await t.rejects(handleMigrationProgress(deps, fromB, { vmId: 'web-1', end: 'sideways' }, 'destination-token'), { code: 'bad-request' })

  const forwarded = handleMigrationProgress(deps, { sender: 'site-a' }, { vmId: 'web-1', end: 'destination' }, 'route-ref')
  await partners.made(1)
  t.match(partners.calls[0], { to: 'site-c', op: 'migration-progress', ref: 'c-ref' }, 'an offer this site passed along: asked of the partner that made it')
  partners.calls[0].answer({ progress: cold(2 * MiB) })
  t.same(await forwarded, { progress: cold(2 * MiB) })
})

t.test('showProgressWhile: redraws one line while the migration runs, ends it at 100 % and a newline', async (t) => {
  let written = ''
  const terminal = { write: (text: string) => { written += text }, columns: 60 }
  let finish!: (value: unknown) => void
  const running = new Promise((resolve) => { finish = resolve })
  const answers = [
    { id: 'site-a', locations: [], migrations: [{ vmId: 'web-1', since: Date.now(), progress: null }], transfers: [], inDoubt: [] },
    { id: 'site-a', locations: [], migrations: [{ vmId: 'web-1', since: Date.now(), progress: cold(10 * MiB) }], transfers: [], inDoubt: [] },
  ]
  let asked = 0
  const shown = showProgressWhile(running, 'web-1', async () => {
    if (++asked === answers.length) setImmediate(() => finish({ outcome: 'migrated' }))
    if (asked > answers.length) throw new Error('the daemon is busy')
    return answers[asked - 1]
  }, terminal, 0)
  await shown
  const draws = written.split('\r').slice(1)
  t.match(draws[0], /^Migration: waiting for figures \(running \d s\)\x1b\[K$/)
  t.equal(draws[1], 'Migration: [ 50 %] transfer, 10.0 MiB of 20.0 MiB left, 4.0\x1b[K', 'cut to the terminal\'s width less one')
  t.equal(draws[draws.length - 1], 'Migration: [100 %] done, 0.0 MiB of 20.0 MiB left, 4.0 MiB/\x1b[K\n', 'the last line says done, then a newline')

  written = ''
  await showProgressWhile(Promise.reject(new Error('refused')), 'web-1', async () => answers[1], terminal, 0)
  t.notMatch(written, /100 %/, 'a failed migration is not drawn as done')
  t.ok(written === '' || written.endsWith('\n'), 'whatever was drawn is ended with a newline')

  written = ''
  let answered!: () => void
  const statusAsked = new Promise<void>((resolve) => { answered = resolve })
  const stuck = showProgressWhile(statusAsked.then(() => ({ outcome: 'migrated' })), 'web-1', () => { answered(); return new Promise(() => {}) }, terminal, 0)
  t.equal(await stuck, undefined, 'a status that never comes does not hold up the outcome')
  t.equal(written, '', 'and draws nothing')
})
