import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SiteState } from '../../../protocol/site/site-state'

t.test('the replay cache survives a restart and forgets ids past their window', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-state-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const first = new SiteState(dir)
  t.notOk(first.seenBefore('site-a', 'msg-00000001', Date.now() + 60_000))
  t.ok(first.seenBefore('site-a', 'msg-00000001', Date.now() + 60_000), 'seen')
  t.notOk(first.seenBefore('site-b', 'msg-00000001', Date.now() + 60_000), 'ids are per sender')
  t.notOk(first.seenBefore('site-a', 'msg-00000002', Date.now() - 1), 'an entry already past its window')
  first.close()
  const again = new SiteState(dir)
  t.ok(again.seenBefore('site-a', 'msg-00000001', Date.now() + 60_000), 'still seen after a restart')
  t.notOk(again.seenBefore('site-a', 'msg-00000002', Date.now() + 60_000), 'the expired entry was dropped')
  again.close()
})

t.test('a location is dropped by a verified transfer only if unchanged since', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-state-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const state = new SiteState(dir)
  t.teardown(() => state.close())
  state.setLocation({ vmId: 'vm1', kind: 'partner', target: 'site-c', upstream: 'site-a', descriptor: { x: 1 }, version: 'v1' })
  state.setLocation({ vmId: 'vm1', kind: 'partner', target: 'site-c', upstream: 'site-a', descriptor: { x: 1 }, version: 'v2' })
  t.notOk(state.dropLocationIf('vm1', 'v1'), 'the VM came back meanwhile: kept')
  t.same(state.location('vm1'), { vmId: 'vm1', kind: 'partner', target: 'site-c', upstream: 'site-a', descriptor: { x: 1 }, version: 'v2' })
  t.ok(state.dropLocationIf('vm1', 'v2'))
  t.equal(state.location('vm1'), undefined)
})
