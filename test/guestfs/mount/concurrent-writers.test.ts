import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'

// Contract 1: "Many writers at once are fine; commits are grouped (group commit) but each close is
// still its own row and is acknowledged only after its transaction is durable."

const WRITERS = 8
const CLOSES = 500

t.test(`${WRITERS} writer processes × ${CLOSES} closes on one KPI → exactly ${WRITERS * CLOSES} rows, none lost, doubled or mixed`, async (t) => {
  const mount = await TestMount.create(t)
  const file = mount.path('unencrypted', 'load')
  const workers = Array.from({ length: WRITERS }, () => mount.worker())
  const started = Date.now()
  const results = await Promise.all(workers.map((worker, writer) =>
    worker.value<{ failures: string[] }>({ op: 'writeLoop', path: file, writer, count: CLOSES })))
  const seconds = (Date.now() - started) / 1000
  t.comment(`${WRITERS * CLOSES} closes in ${seconds.toFixed(2)} s (${Math.round(WRITERS * CLOSES / seconds)} closes/s, worker start included)`)
  t.same(results.map((result) => result.failures), workers.map(() => []), 'every close() returned 0')

  const rows = mount.query<{ ts: number, writer: number, seq: number, tag: string, tw: string, ts2: string }>(
    'SELECT ts, writer, seq, tag, typeof(writer) AS tw, typeof(seq) AS ts2 FROM load ORDER BY rowid')
  t.equal(rows.length, WRITERS * CLOSES, 'one row per close')
  t.same(mount.columns('load').map((c) => c.name), ['ts', 'writer', 'seq', 'tag'], 'no stray column from a mixed write')

  const mixed = rows.filter((row) => row.tw !== 'integer' || row.ts2 !== 'integer' || row.tag !== `w${row.writer}-s${row.seq}`)
  t.same(mixed, [], 'every row is one whole sample: its three values agree')
  const seen = new Set(rows.map((row) => `${row.writer}:${row.seq}`))
  t.equal(seen.size, WRITERS * CLOSES, 'no sample stored twice')
  const missing: string[] = []
  for (let writer = 0; writer < WRITERS; writer++) {
    for (let seq = 0; seq < CLOSES; seq++) if (!seen.has(`${writer}:${seq}`)) missing.push(`${writer}:${seq}`)
  }
  t.same(missing, [], 'no sample lost')

  // A writer's closes are sequential, so its rows must be in its order, and ts never goes back.
  const outOfOrder = workers.map((_, writer) => rows.filter((row) => row.writer === writer).map((row) => row.seq))
    .filter((seqs) => seqs.some((seq, i) => seq !== i))
  t.same(outOfOrder, [], 'each writer\'s rows are in its close order')
  t.ok(rows.every((row, i) => i === 0 || row.ts >= rows[i - 1].ts), 'ts never decreases in commit order')
  const { writer, seq } = rows[rows.length - 1]
  t.equal((await mount.app.read(file)).toString(), `writer,seq,tag\n${writer},${seq},w${writer}-s${seq}\n`, 'the file reads as the last committed sample')
})
