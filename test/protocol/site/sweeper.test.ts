import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirHost } from '../../../host/vm-folder/dir-host'
import type { TokenRecord } from '../../../protocol/proxy/token-record'
import { IncomingTransfers } from '../../../protocol/roles/incoming-transfers'
import { SiteState } from '../../../protocol/site/site-state'
import { sweepExpired } from '../../../protocol/site/sweeper'

// The sweeper on a real site state and a real directory host, run at instants the test chooses:
// what an expired token prepared is undone, at once and only once it expired. A source VM held for
// leaving is not undone by expiry: only the Controller's decision may run it again (its files may run
// at the Destination already), so the resolver, not the sweeper, ends that.

const T0 = 1_700_000_000_000

function token (over: Partial<TokenRecord>): TokenRecord {
  return {
    token: 'tok', role: 'source', proxy: 0, vmId: 'vm1', hostId: 'h1', boundTo: 'x', descriptor: null,
    manifest: null, state: 'open', expiresAt: T0, locationVersion: null, requester: 'site-a', ...over,
  }
}

t.test('expired tokens: a held source VM stays held, partial files go, a running pull is left alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-sweep-'))
  const state = new SiteState(join(dir, 'state'))
  t.teardown(async () => { state.close(); await rm(dir, { recursive: true, force: true }) })
  const host = new DirHost('h1', join(dir, 'vms'), 4)
  await mkdir(join(dir, 'vms', 'vm1'), { recursive: true })
  await writeFile(join(dir, 'vms', 'vm1', 'disk.img'), 'disk')
  await host.prepareForLeaving('vm1')
  await writeFile(join(await host.receive('vm2'), 'disk.img'), 'part')
  await host.receive('vm3')
  state.putToken(token({ token: 'held', vmId: 'vm1' }))
  state.putToken(token({ token: 'partial', role: 'destination', vmId: 'vm2' }))
  state.putToken(token({ token: 'pulling', role: 'destination', vmId: 'vm3' }))
  state.putRoute({ ref: 'route', kind: 'offer', vmId: 'vm4', partner: 'site-c', partnerRef: 'r', requester: 'site-a', locationVersion: null, expiresAt: T0 })
  const transfers = new IncomingTransfers()
  transfers.pulls.set('pulling', new Promise(() => {}))
  const events: Array<Record<string, unknown>> = []
  const deps = { state, hosts: { get: () => host }, transfers, log: (e: Record<string, unknown>) => { events.push(e) } }

  await sweepExpired(deps, T0)
  t.equal(state.token('held')?.state, 'open', 'at its expiry instant a token is still open')
  t.ok(existsSync(join(dir, 'vms', '.leaving', 'vm1')), 'and the VM still held for leaving')
  t.ok(state.route('route'), 'a route at its expiry instant is kept')

  await sweepExpired(deps, T0 + 1)
  t.equal(state.token('held')?.state, 'open', 'an expired source token stays in doubt until the Controller\'s decision')
  t.ok(existsSync(join(dir, 'vms', '.leaving', 'vm1')), 'the source VM is still held for leaving')
  t.ok(existsSync(join(dir, 'vms', 'vm1', 'disk.img')), 'and stays where it is')
  t.equal(state.token('partial')?.state, 'expired')
  t.notOk(existsSync(join(dir, 'vms', '.incoming', 'vm2')), 'a destination\'s partial files are dropped')
  t.equal(state.token('pulling')?.state, 'open', 'a token whose pull still runs is left alone')
  t.ok(existsSync(join(dir, 'vms', '.incoming', 'vm3')), 'with its files')
  t.ok(state.route('route'), 'an expired route is kept a while: an in-doubt side may still ask its way up through it')
  await sweepExpired(deps, T0 + 7 * 24 * 3600_000 + 1)
  t.equal(state.route('route'), undefined, 'a week past its expiry it is forgotten')
  t.same(events.map((e) => `${String(e.event)}:${String(e.vm)}`).sort(), ['token-expired:vm2'])
})
