import t from 'tap'
import { MonitorHarness } from '../support/monitor-harness'
import { TinyFs, tinyFsUnavailable } from '../support/tiny-fs'

// A delivery window that closes while the agent's state cannot be written: the timer must not
// throw (an uncaught error ends the daemon); the window keeps its samples and the next close
// delivers them all. A real tmpfs runs out of space; the clock is node:test's mock.

const WINDOW = { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed', function: 'max' }

t.test('a window that closes on a full disk is kept and delivered at the next close', { skip: tinyFsUnavailable() }, async (t) => {
  const tiny = await TinyFs.mount(t, 1024)
  const h = await MonitorHarness.create(t, [WINDOW], { parent: tiny.path })
  h.users(3, 9, 4)
  t.comment(`the filler took ${tiny.fill()} bytes`)
  t.doesNotThrow(() => h.tick(1000), 'the window timer fires on a full disk without throwing')
  t.equal(h.delivered.length, 0, 'nothing delivered while the outbox cannot be written')
  t.equal(h.store.health.up, false, 'storage reported down')
  t.ok((h.store.health.errors.get('window') ?? 0) > 0, 'the failed window write counted')

  tiny.free()
  h.tick(1000)
  t.strictSame(h.delivered.map((d) => d.value), [9], 'the kept window delivered at the next close, with every sample')
  t.equal(h.store.health.up, true, 'storage up again')
  t.strictSame(h.outbox().map((d) => d.value), [9], 'and it is in the outbox once')
})
