import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FeedClient } from '../../../agent/feed/feed-client'
import type { RowFrame } from '../../../protocol/kpi-feed/frames'
import { FakeGuest } from '../support/fake-feed-peers'
import { waitFor } from '../../support/wait'

// Group commit in the feed client: a row that arrives while the client is idle is stored at once,
// in a batch of its own; under load, transactions (each a durable cursor move and an ack) start at
// least 10 ms apart and each takes every row that arrived meanwhile, so their number per second
// stays bounded whatever the row rate.

const SPACING_MS = 10
const stats = JSON.stringify({ v: 1, t: 'stats', committed: 0, refused: 0, last: '0', epoch: 'feedfeedfeedfeed' }) + '\n'
const row = (seq: number) => JSON.stringify({ v: 1, t: 'row', seq: String(seq), kpi: 'k', ts: 1_700_000_000_000 + seq, cols: ['v'], vals: [seq] }) + '\n'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('one transaction per row while idle; at least 10 ms apart under load, every row once and in order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-group-commit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'feed.sock')
  const guest = await FakeGuest.listen(t, path)
  let cursor = 0n
  const batches: Array<{ at: number, seqs: number[] }> = []
  const client = new FeedClient({
    endpoint: `unix:${path}`,
    cursor: () => cursor,
    noCursor: () => false,
    onRows: (rows: RowFrame[]) => {
      batches.push({ at: performance.now(), seqs: rows.map((r) => Number(r.seq)) })
      cursor = BigInt(rows[rows.length - 1].seq)
    },
    onStats: () => false,
    onConnected: () => {},
    log: (line) => t.comment(line),
  })
  client.start()
  t.teardown(() => client.stop())
  const connection = await guest.next()
  await connection.line(0)
  connection.write(stats)

  connection.write(row(1))
  await waitFor('the first row', () => batches.length === 1, 5000)
  t.strictSame(batches[0].seqs, [1], 'an idle row: a batch of its own')

  await sleep(3 * SPACING_MS)
  const ROWS = 60
  for (let seq = 2; seq <= ROWS + 1; seq++) {
    connection.write(row(seq))
    await sleep(1)
  }
  await waitFor('every row', () => cursor === BigInt(ROWS + 1), 5000)
  const loaded = batches.slice(1)
  t.strictSame(loaded.flatMap((b) => b.seqs), Array.from({ length: ROWS }, (_, i) => i + 2), 'every row once, in order')
  const gaps = loaded.slice(1).map((b, i) => b.at - loaded[i].at)
  // Timers run on the event loop's millisecond clock, read at the start of the turn: up to ~2 ms early by performance.now().
  t.ok(gaps.every((gap) => gap >= SPACING_MS - 2), `transactions about ${SPACING_MS} ms apart or more (gaps ${gaps.map((g) => g.toFixed(1)).join(', ')})`)
  t.ok(loaded.length < ROWS / 2, `${ROWS} rows arriving ~1 ms apart took ${loaded.length} transactions`)
})
