import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { COALESCE_MS, FeedSession } from '../../../guestfs/feed/feed-session'
import type { Timing } from '../../../guestfs/timing'
import { KpiStore } from '../../../guestfs/store/kpi-store'

// The feed's writes while rows arrive back to back: the first row after a quiet spell goes out at
// the end of its event-loop turn, later ones wait for the rest of a COALESCE_MS window and go out
// together. A real store (SQLite in a temporary folder) commits; the clock and the window's timer
// are the test's, so nothing here depends on how fast the machine is.

class TestTiming implements Timing {
  at = 1000
  readonly pending: Array<{ ms: number, fn: () => void }> = []
  now (): number { return this.at }
  after (ms: number, fn: () => void): void { this.pending.push({ ms, fn }) }
  /** Moves the clock to the end of the oldest window and runs its timer. */
  fire (): void {
    const next = this.pending.shift()
    if (!next) throw new Error('no window is pending')
    this.at += next.ms
    next.fn()
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

async function setUp (t: tap.Test) {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-feed-coalescing-'))
  const store = KpiStore.open(join(dir, 'kpi.db'))
  const input = new PassThrough()
  const output = new PassThrough()
  const writes: string[] = []
  output.setEncoding('utf8').on('data', (chunk: string) => writes.push(chunk))
  const timing = new TestTiming()
  const session = new FeedSession(store, input, output, (reason) => t.fail(`bad frame: ${reason}`), timing)
  t.teardown(async () => {
    session.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })
  input.write(JSON.stringify({ v: 1, t: 'hello', after: '0' }) + '\n')
  await turn()
  writes.length = 0 // the stats answering the hello
  const commit = (i: number) => store.commit('unencrypted', 'load', Buffer.from(`v\n${i}\n`))
  /** The row sequences of each write to the stream, one array per write. */
  const rowWrites = () => writes.map((chunk) => chunk.trim().split('\n').map((line) => JSON.parse(line)).filter((f) => f.t === 'row').map((f) => f.seq))
  return { timing, commit, rowWrites }
}

t.test('an idle feed writes a row at the end of its turn, with no window', async (t) => {
  const { timing, commit, rowWrites } = await setUp(t)
  await commit(1)
  await turn()
  t.same(rowWrites(), [['1']], 'written without any timer')
  t.equal(timing.pending.length, 0)
  timing.at += COALESCE_MS // a quiet spell as long as the window
  await commit(2)
  await turn()
  t.same(rowWrites(), [['1'], ['2']], 'after a quiet spell the next row goes out at once too')
  t.equal(timing.pending.length, 0)
})

t.test('rows back to back: held for the rest of the window, then written together', async (t) => {
  const { timing, commit, rowWrites } = await setUp(t)
  await commit(1)
  await turn()
  timing.at += 0.5
  await commit(2)
  await turn()
  timing.at += 0.5
  await commit(3)
  await turn()
  t.same(rowWrites(), [['1']], 'rows 2 and 3 wait: the stream was written 0.5 ms before row 2')
  t.equal(timing.pending.length, 1, 'one window for both')
  t.ok(timing.pending[0].ms > 0 && timing.pending[0].ms <= COALESCE_MS, `the wait is bounded by the window (${timing.pending[0].ms} ms)`)
  t.equal(timing.pending[0].ms, COALESCE_MS - 0.5, 'it ends COALESCE_MS after the last write')
  timing.fire()
  t.same(rowWrites(), [['1'], ['2', '3']], 'the held rows go out in one write, in commit order')
})

t.test('a group commit\'s rows share one write even when idle', async (t) => {
  const { timing, commit, rowWrites } = await setUp(t)
  await Promise.all([commit(1), commit(2), commit(3)])
  await turn()
  t.same(rowWrites(), [['1', '2', '3']])
  t.equal(timing.pending.length, 0)
})
