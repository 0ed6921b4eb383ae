import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActiveMigrations } from '../../../protocol/roles/active-migrations'
import { handleMigrationOutcome, type OutcomeDeps } from '../../../protocol/roles/migration-outcome'
import type { MigrationRecord } from '../../../protocol/roles/migration-record'
import { SiteState } from '../../../protocol/site/site-state'

// What the Controller answers a side in doubt, case by case, from a real site state: the Destination
// may act on commit at once, the Source only once the Destination runs the VM; an undecided record
// with no Controller running for it is decided abort (and that is recorded); nothing known is abort.

function record (over: Partial<MigrationRecord>): MigrationRecord {
  return {
    id: 'm1', vmId: 'vm1', via: 'site-d', offerRef: 'offer-1', sourceVia: 'site-s', sourceToken: 'tok-1',
    decision: 'undecided', destinationSettled: false, sourceSettled: false, upstream: null, descriptor: null, createdAt: 1, ...over,
  }
}

t.test('migration-outcome as the Controller answers it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-outcome-'))
  const state = new SiteState(join(dir, 'state'))
  t.teardown(async () => { state.close(); await rm(dir, { recursive: true, force: true }) })
  const active = new ActiveMigrations()
  const events: Array<Record<string, unknown>> = []
  const asked: string[] = []
  const deps: OutcomeDeps = {
    self: 'site-c', migrations: state, active, routes: state, locations: state, newVersion: () => `v${events.length}`,
    log: (e) => { events.push(e) },
    partners: { ids: () => [], send: async (to) => { asked.push(to); return { decision: 'commit' } } },
  }
  const ask = (sender: string, ref: string) => handleMigrationOutcome(deps, { sender }, { vmId: 'vm1', ref })

  state.putMigration(record({ decision: 'commit' }))
  t.same(await ask('site-d', 'offer-1'), { decision: 'commit' }, 'commit recorded: the Destination makes the VM its own')
  t.same(await ask('site-s', 'tok-1'), { decision: 'pending' }, 'but the Source waits until the Destination runs it')
  await t.rejects(ask('site-x', 'offer-1'), { code: 'token-foreign' }, 'only the neighbour the offer came from may ask')

  state.putMigration(record({ decision: 'committed', destinationSettled: true }))
  t.same(await ask('site-s', 'tok-1'), { decision: 'commit' }, 'committed: the Source releases')

  state.putMigration(record({ id: 'm2', offerRef: 'offer-2', sourceToken: 'tok-2', createdAt: 2 }))
  active.enter('vm1')
  t.same(await ask('site-d', 'offer-2'), { decision: 'pending' }, 'undecided while the Controller runs: pending')
  active.leave('vm1')
  t.same(await ask('site-s', 'tok-2'), { decision: 'abort' }, 'undecided with no Controller running: abort')
  t.equal(state.migration('m2')?.decision, 'abort', 'and the abort is recorded before it is answered')
  t.same(await ask('site-d', 'offer-2'), { decision: 'abort' }, 'the Destination hears the same')

  t.same(await ask('site-s', 'never-seen'), { decision: 'abort' }, 'a token no record or route knows: abort')
  t.same(asked, [], 'the Controller asks nobody')

  // As an Intermediary: the question goes one hop up with this site's own ref, and a commit moves its record.
  state.putRoute({ ref: 'mine', kind: 'offer', vmId: 'vm1', partner: 'site-e', partnerRef: 'theirs', requester: 'site-a', locationVersion: null, expiresAt: 0 })
  t.same(await ask('site-e', 'theirs'), { decision: 'commit' }, 'passed up and back')
  t.same(asked, ['site-a'], 'to the site the offer was made to')
  t.match(state.location('vm1'), { kind: 'partner', target: 'site-e', upstream: 'site-a' }, 'this site now records where the VM went')
})
