import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProtocolError, toProtocolError } from '../../../protocol/errors'
import { fromProblemDocument, toProblemDocument } from '../../../protocol/http/problem'
import type { Delivery } from '../../../protocol/relay/delivery'
import { openMonitoringDb } from '../../../protocol/relay/monitoring-db'
import { LOCAL, MonitoringRelay } from '../../../protocol/relay/monitoring-relay'
import { PrimaryStore } from '../../../protocol/primary/primary-store'
import type { LocationRecord } from '../../../protocol/roles/records'
import { waitFor } from '../../support/wait'
import { openTestRelay } from './support/test-relay'

// The relay on a real monitoring.db with the location records and the next hop played by the test:
// routing by upstream, refusals, tombstones, retries, refused deliveries set apart, a restart.

type Former = Pick<LocationRecord, 'kind' | 'target' | 'upstream'> & { leftAt: number }

function delivery (id: string, vm = 'vm1', extra: Partial<Delivery> = {}): Delivery {
  return { id, vm, metric: 'kpi:app.users', format: 'processed', function: 'max', from: 1000, to: 2000, value: 7, ...extra }
}

async function setup (t: { teardown (fn: () => unknown): void }, send: (to: string, deliveries: Delivery[]) => Promise<unknown>) {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-relay-test-'))
  const locations = new Map<string, Pick<LocationRecord, 'kind' | 'target' | 'upstream'>>()
  const former = new Map<string, Former[]>()
  const events: Array<Record<string, unknown>> = []
  const open = () => {
    const db = openMonitoringDb(dir)
    const relay = openTestRelay(t, db, {
      state: {
        location: (vm) => { const l = locations.get(vm); return l && { vmId: vm, descriptor: null, version: 'v', ...l } },
        formerLocations: (vm, since) => (former.get(vm) ?? []).filter((f) => f.leftAt >= since),
      },
      send,
      events,
    })
    return { relay, db }
  }
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return { locations, former, events, open }
}

t.test('routes by the location record: upstream null → primary store, otherwise the upstream; onStored gets only fresh ones', async (t) => {
  const sent: Array<{ to: string, ids: string[] }> = []
  const s = await setup(t, async (to, ds) => { sent.push({ to, ids: ds.map((d) => d.id) }) })
  s.locations.set('mine', { kind: 'partner', target: 'site-c', upstream: null })
  s.locations.set('theirs', { kind: 'partner', target: 'site-c', upstream: 'site-a' })
  const { relay, db } = s.open()
  const stored: string[][] = []
  relay.onStored((fresh) => stored.push(fresh.map((d) => d.id)))
  t.same(await relay.accept([delivery('p1', 'mine'), delivery('f1', 'theirs'), delivery('p2', 'mine')], 'site-c'), { accepted: 3 })
  t.same(await relay.accept([delivery('p1', 'mine'), delivery('p3', 'mine')], 'site-c'), { accepted: 2 })
  t.same(stored, [['p1', 'p2'], ['p3']], 'a repeat is stored once and not passed on again')
  t.same((db.prepare('SELECT id FROM deliveries ORDER BY id').pluck().all()), ['p1', 'p2', 'p3'])
  await waitFor('the forward', () => sent.length > 0)
  t.same(sent, [{ to: 'site-a', ids: ['f1'] }])
  await waitFor('the outbox to empty', () => Object.keys(relay.queued()).length === 0)
})

t.test('refusals: unknown VM, a sender the VM was never delegated to, a bad field; nothing of the batch stored', async (t) => {
  const s = await setup(t, async () => {})
  s.locations.set('vm1', { kind: 'partner', target: 'site-c', upstream: null })
  s.locations.set('here', { kind: 'host', target: 'h1', upstream: null })
  const { relay, db } = s.open()
  await t.rejects(relay.accept([delivery('a'), delivery('b', 'nobody')], 'site-c'), { code: 'unknown-vm', message: /deliveries\[1\]\.vm/ })
  await t.rejects(relay.accept([delivery('c')], 'site-d'), { code: 'not-permitted' }, 'site-d does not run vm1 for this site')
  await t.rejects(relay.accept([delivery('d', 'here')], 'site-c'), { code: 'not-permitted' }, 'a VM on a local host: no partner may send for it')
  t.same(await relay.accept([delivery('e', 'here')], LOCAL), { accepted: 1 }, 'its own hosts may')
  await t.rejects(relay.accept([delivery('f'), { ...delivery('g'), format: 'raw' }], 'site-c'), { code: 'bad-request', message: /deliveries\[1\]\.value/ })
  await t.rejects(relay.accept([{ ...delivery('h'), samples: [{ ts: 1, value: 2 }] }], 'site-c'), { code: 'bad-request', message: /exactly one of/ })
  await t.rejects(relay.accept([{ ...delivery('i'), sealed: 'not base64!' , value: undefined }], 'site-c'), { code: 'bad-request', message: /deliveries\[0\]\.sealed/ })
  await t.rejects(relay.accept([{ ...delivery('j'), extra: 1 }], 'site-c'), { code: 'bad-request', message: /deliveries\[0\]/ })
  t.same(db.prepare('SELECT id FROM deliveries').pluck().all(), ['e'], 'only the accepted batch was stored')
})

t.test('tombstones: a VM that left still routes by its former upstream, and its former target is still heard', async (t) => {
  const sent: string[] = []
  const s = await setup(t, async (to, ds) => { sent.push(...ds.map((d) => `${to}:${d.id}`)) })
  s.former.set('gone', [{ kind: 'partner', target: 'site-c', upstream: 'site-a', leftAt: Date.now() - 1000 }])
  s.former.set('long-gone', [{ kind: 'partner', target: 'site-c', upstream: 'site-a', leftAt: Date.now() - 120_000 }])
  const { relay } = s.open()
  t.same(await relay.accept([delivery('late', 'gone')], 'site-c'), { accepted: 1 })
  await t.rejects(relay.accept([delivery('too-late', 'long-gone')], 'site-c'), { code: 'unknown-vm' }, 'past the grace period')
  await waitFor('the forward', () => sent.length > 0)
  t.same(sent, ['site-a:late'])
})

t.test('a hop down: kept and retried with backoff; a delivery refused for good is set apart; a restart sends what is queued', async (t) => {
  let mode: 'down' | 'refuse-x' | 'up' = 'down'
  const received: string[] = []
  let attempts = 0
  const s = await setup(t, async (_to, ds) => {
    attempts++
    if (mode === 'down') throw new ProtocolError('partner-unreachable', 'down')
    if (ds.some((d) => d.id === 'x')) throw new ProtocolError('unknown-vm', 'refused for good')
    received.push(...ds.map((d) => d.id))
  })
  s.locations.set('vm1', { kind: 'partner', target: 'site-c', upstream: 'site-a' })
  const first = s.open()
  await first.relay.accept(['a', 'b', 'x', 'c'].map((id) => delivery(id)), 'site-c')
  await waitFor('a few attempts', () => attempts >= 3, 5000)
  t.same(first.relay.queued(), { 'site-a': 4 }, 'nothing lost while the hop is down')
  await first.relay.close()
  first.db.close()

  mode = 'refuse-x'
  const second = s.open()
  second.relay.start()
  await waitFor('the queue to drain after the restart', () => Object.keys(second.relay.queued()).length === 0, 5000)
  t.same(received.sort(), ['a', 'b', 'c'], 'every delivery but the refused one arrived')
  t.ok(s.events.some((e) => e.event === 'monitoring-delivery-refused' && e.id === 'x'), 'the refused one is logged')
  t.equal(second.db.prepare('SELECT sum(count) FROM outbox WHERE dead = 1').pluck().get(), 1, 'and kept apart, never sent again')
})

t.test('the next hop lists the deliveries it refuses: those are set apart, the others sent again at once, no halving', async (t) => {
  // The next hop is a real relay (site-a, the VMs' primary) whose refusals reach this site as a
  // problem document does on the wire: its `refused` list names the future-dated deliveries.
  const upstreamDir = await mkdtemp(join(tmpdir(), 'fedvm-relay-upstream-'))
  const upstreamDb = openMonitoringDb(upstreamDir)
  const upstream = new MonitoringRelay({
    siteId: 'site-a', db: upstreamDb, primary: new PrimaryStore(upstreamDb), send: async () => {}, log: () => {}, lingerMs: 1, tombstoneMs: 60_000, maxBatchBytes: 64 * 1024,
    // Stricter about clocks than this site (60 s): deliveries 30 s ahead pass here and are refused there.
    maxClockSkewMs: 1000,
    state: { location: (vm) => ({ vmId: vm, kind: 'partner', target: 'site-b', upstream: null, descriptor: null, version: 'v' }), formerLocations: () => [] },
  })
  t.teardown(async () => { await upstream.close(); upstreamDb.close(); await rm(upstreamDir, { recursive: true, force: true }) })
  const requests: Array<{ ids: string[], status: number }> = []
  const s = await setup(t, async (_to, ds) => {
    const request = { ids: ds.map((d) => d.id), status: 200 }
    requests.push(request)
    try {
      return await upstream.accept(JSON.parse(JSON.stringify(ds)) as unknown[], 'site-b')
    } catch (err) {
      const problem = toProblemDocument(toProtocolError(err))
      request.status = problem.status
      throw fromProblemDocument(JSON.parse(JSON.stringify(problem)), problem.status)
    }
  })
  s.locations.set('vm1', { kind: 'partner', target: 'site-c', upstream: 'site-a' })
  const { relay, db } = s.open()
  const future = Date.now() + 30_000
  await relay.accept([delivery('a'), delivery('x', 'vm1', { to: future }), delivery('b'), delivery('y', 'vm1', { to: future }), delivery('c')], 'site-c')
  await waitFor('the outbox to empty', () => Object.keys(relay.queued()).length === 0, 5000)
  t.same(requests, [{ ids: ['a', 'x', 'b', 'y', 'c'], status: 400 }, { ids: ['a', 'b', 'c'], status: 200 }], 'one refusal naming x and y, then the other three at once')
  t.same(upstreamDb.prepare('SELECT id FROM deliveries ORDER BY id').pluck().all(), ['a', 'b', 'c'])
  t.same(s.events.filter((e) => e.event === 'monitoring-delivery-refused').map((e) => [e.id, e.code]), [['x', 'bad-request'], ['y', 'bad-request']])
  t.match(s.events.find((e) => e.id === 'x'), { detail: /deliveries\[1\]\.to: data time .* ahead/ }, 'the hop\'s words for that delivery')
  t.same((db.prepare('SELECT body FROM outbox WHERE dead = 1').pluck().all() as string[]).flatMap((b) => (JSON.parse(b) as Delivery[]).map((d) => d.id)), ['x', 'y'], 'kept apart')
})

t.test('part of a batch stored, the rest refused for now or unanswered: only the rest is sent again; a 401 is retried whole', async (t) => {
  const received: string[] = []
  let script: Array<(ds: Delivery[]) => void> = []
  const s = await setup(t, async (_to, ds) => {
    const step = script.shift()
    step?.(ds)
    received.push(...ds.map((d) => d.id))
  })
  s.locations.set('vm1', { kind: 'partner', target: 'site-c', upstream: 'site-a' })
  const { relay, db } = s.open()

  // The hop refuses b for now (retryable), naming it: a and c are stored, b goes again after a backoff.
  script = [(ds) => { throw new ProtocolError('bad-request', 'b later', { refused: [{ index: ds.findIndex((d) => d.id === 'b'), id: 'b', code: 'unknown-vm', retryable: true, detail: 'not yet' }] }) }]
  await relay.accept([delivery('a'), delivery('b'), delivery('c')], 'site-c')
  await waitFor('the outbox to empty', () => Object.keys(relay.queued()).length === 0, 5000)
  t.same(received, ['a', 'c', 'b'], 'a and c once, b once more after the backoff')

  // A list that names nothing usable (an id that is not at that place): narrowed by halves; the hop goes away
  // after the first half was stored, so only the second half is sent again.
  received.length = 0
  script = [
    () => { throw new ProtocolError('bad-request', 'one is bad', { refused: [{ index: 0, id: 'not-d', code: 'bad-request', retryable: false, detail: 'x' }] }) },
    () => {},
    () => { throw new ProtocolError('partner-unreachable', 'down') },
  ]
  await relay.accept([delivery('d'), delivery('e'), delivery('f'), delivery('g')], 'site-c')
  await waitFor('the outbox to empty', () => Object.keys(relay.queued()).length === 0, 5000)
  t.same(received, ['d', 'e', 'f', 'g'], 'each stored once: d and e in the first half, f and g after the backoff')

  // The hop does not know this site's key yet (401): about the sender, not the batch, so retried whole, never halved.
  received.length = 0
  const refuse = () => { throw new ProtocolError('unknown-sender', 'site-b is not a known partner') }
  script = [refuse, refuse]
  await relay.accept([delivery('h'), delivery('i')], 'site-c')
  await waitFor('the outbox to empty', () => Object.keys(relay.queued()).length === 0, 5000)
  t.same(received, ['h', 'i'], 'both arrive once the hop knows the key')
  t.equal(db.prepare('SELECT count(*) FROM outbox WHERE dead = 1').pluck().get(), 0, 'nothing set apart')
})
