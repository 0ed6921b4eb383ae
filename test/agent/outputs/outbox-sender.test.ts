import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mock } from 'node:test'
import t from 'tap'
import { OutboxSender } from '../../../agent/outputs/outbox-sender'
import { AgentStore, type QueuedDelivery } from '../../../agent/state/agent-store'
import type { AgentDelivery as Delivery } from '../../../protocol/relay/delivery'
import type { Teardownable } from '../../support/teardownable'

// Group commit with spacing: a delivery queued while the consumer is idle leaves at once; what is
// queued while a send is in flight goes in the next send; sends start at least spacingMs apart.
// On node:test's mock timers and Date, so every "at once" and "after 10 ms" is exact.

const SPACING_MS = 10
const T0 = 1_700_000_000_000

function delivery (n: number): Delivery {
  return { id: `d${n}`, vm: 'web-1', metric: 'kpi:users.n', format: 'raw', from: n, to: n, samples: [{ ts: n, value: n }] }
}

async function setUp (t: Teardownable): Promise<{ store: AgentStore, sender: OutboxSender, sends: Array<{ at: number, ids: string[] }>, answer: () => void, queue: (...n: number[]) => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-outbox-sender-'))
  mock.timers.enable({ apis: ['setTimeout', 'setImmediate', 'Date'], now: T0 })
  const store = new AgentStore(dir)
  const sends: Array<{ at: number, ids: string[] }> = []
  let pending: Array<() => void> = []
  const sender = new OutboxSender({
    name: 'c',
    store,
    batch: 500,
    spacingMs: SPACING_MS,
    log: () => {},
    send: (due: QueuedDelivery[]) => {
      sends.push({ at: Date.now() - T0, ids: due.map((d) => d.id) })
      return new Promise((resolve) => pending.push(() => resolve({ failed: [] })))
    },
  })
  t.teardown(async () => {
    sender.stop()
    store.close()
    mock.timers.reset()
    await rm(dir, { recursive: true, force: true })
  })
  const queue = (...ns: number[]): void => {
    store.transaction(() => { for (const n of ns) store.enqueue('c', delivery(n)) })
    sender.kick()
  }
  const answer = (): void => {
    const settle = pending
    pending = []
    for (const s of settle) s()
  }
  return { store, sender, sends, answer, queue }
}

/** Lets promise callbacks run, then moves the clock. */
async function tick (ms: number): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
  mock.timers.tick(ms)
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

t.test('idle: a delivery leaves at once; queued during a send: the next send takes them all, spacing apart', async (t) => {
  const { sends, answer, queue, sender, store } = await setUp(t)
  sender.start()
  await tick(0)
  t.equal(sends.length, 0, 'nothing queued: nothing sent')

  queue(1)
  await tick(0)
  t.strictSame(sends, [{ at: 0, ids: ['d1'] }], 'sent at once, no linger')

  queue(2)
  await tick(3)
  queue(3, 4)
  await tick(1)
  t.equal(sends.length, 1, 'one send in flight at a time')
  answer() // the first send is acknowledged at t = 4
  await tick(0)
  t.equal(sends.length, 1, 'the next send waits for the spacing')
  await tick(SPACING_MS - 4)
  t.strictSame(sends[1], { at: SPACING_MS, ids: ['d2', 'd3', 'd4'] }, 'everything queued meanwhile, in one send, spacingMs after the first started')
  answer()
  await tick(0)
  t.equal(store.queueLength('c'), 0, 'acknowledged deliveries leave the outbox')

  await tick(500)
  queue(5)
  await tick(0)
  t.strictSame(sends[2], { at: SPACING_MS + 500, ids: ['d5'] }, 'idle again: at once')
  answer()
  await tick(0)
  t.equal(sends.length, 3)
})
