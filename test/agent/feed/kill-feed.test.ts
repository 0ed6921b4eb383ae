import t from 'tap'
import { AgentSetup } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { sleep, waitFor } from '../../support/wait'
import { seededRandom } from '../../support/seeded-random'

// Contract 2: "Each committed row reaches the host exactly once, in commit order
// … nothing is lost or repeated when guestfs, the agent or the connection is killed at any
// moment." guestfs and the agent are SIGKILLed at random moments while an application writes
// numbered rows; the HTTP receiver must end up with each committed row exactly once after
// dropping repeats by delivery id, none missing, and the agent's cursor never runs ahead.

// The same number in two columns: one specifier each, so their deliveries are told apart by metric.
const AT_ONCE = { metric: 'kpi:numbered.n', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const WINDOWED = { metric: 'kpi:numbered.m', monitoringIntervalMs: 0, deliveryIntervalMs: 250, format: 'raw' }
const MIN_ROWS = 150
type Victim = 'guestfs' | 'agent' | 'both'

t.test('SIGKILL of guestfs and the agent at random moments: every committed row delivered exactly once after de-duplication', async (t) => {
  const started = Date.now()
  const seed = Number(process.env.FEDVM_KILL_SEED ?? Date.now() % 1_000_000)
  t.comment(`seed ${seed} (FEDVM_KILL_SEED=${seed} replays the same moments)`)
  const random = seededRandom(seed)
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [AT_ONCE, WINDOWED], consumers: [receiver.url] })
  const mount = setup.mount!
  await setup.startAgent()
  const app = mount.worker()
  const file = mount.path('unencrypted', 'numbered')

  // The agent's cursor, sampled throughout, against the guest's last committed row read after it.
  const cursors: Array<{ cursor: bigint, guestLast: bigint }> = []
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      try {
        const cursor = setup.cursor()
        const [{ last }] = mount.query<{ last: number | null }>('SELECT max(rowid) AS last FROM numbered')
        cursors.push({ cursor, guestLast: BigInt(last ?? 0) })
      } catch {
        // a table or database not there yet, or busy while a process restarts: next time
      }
      await sleep(50)
    }
  })()

  // The application: numbers 1, 2, 3, …; a write that failed (guestfs gone) is retried with the same number.
  const acknowledged: number[] = []
  let failures = 0
  let chaosDone = false
  t.teardown(() => {
    // Also when the test failed half-way: the loops must end.
    sampling = false
    chaosDone = true
  })
  const writer = (async () => {
    let next = 1
    while (!chaosDone || next <= MIN_ROWS) {
      const outcome = await app.outcome({ op: 'write', path: file, data: `n,m\n${next},${next}\n` })
      if (outcome === 'ok') acknowledged.push(next++)
      else failures++
      await sleep(outcome === 'ok' ? 4 : 25)
    }
  })()

  // The chaos: six kills at random moments once rows flow, each victim at least twice. A restarted
  // agent is not waited for, so a later kill may also hit it while it starts and catches up.
  await waitFor('the first acknowledged row', () => acknowledged.length > 0)
  const victims: Victim[] = ['guestfs', 'agent', 'both', 'guestfs', 'agent', 'both']
  for (let i = victims.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[victims[i], victims[j]] = [victims[j], victims[i]]
  }
  for (const victim of victims) {
    await sleep(150 + random() * 500)
    const kills: Array<Promise<unknown>> = []
    if (victim !== 'agent') kills.push(mount.guestfs.kill())
    if (victim !== 'guestfs') kills.push(setup.agent.kill())
    await Promise.all(kills)
    t.comment(`${Date.now() - started} ms: killed ${victim} after row ${acknowledged.at(-1) ?? 0}`)
    await sleep(random() * 300)
    const starts: Array<Promise<unknown>> = []
    if (victim !== 'agent') starts.push(mount.start(setup.guestfsArgs))
    if (victim !== 'guestfs') starts.push(setup.startAgent({ ready: false }))
    await Promise.all(starts)
  }
  chaosDone = true
  await setup.agent.waitForLog(/agent: serving \/metrics/, 1, 15_000)
  t.comment(`${Date.now() - started} ms: both running again`)
  await writer
  t.ok(failures > 0, `the application saw guestfs go away (${failures} failed writes, retried)`)

  const guestRows = mount.query<{ seq: number, ts: number, n: number }>('SELECT rowid AS seq, ts, n FROM numbered ORDER BY rowid')
  const expected = guestRows.map((r) => `${r.ts}:${r.n}`)
  const atOnce = () => receiver.unique().filter((d) => d.metric === AT_ONCE.metric)
  const windowed = () => receiver.unique().filter((d) => d.metric === WINDOWED.metric)
  await waitFor(`all ${guestRows.length} rows at the receiver`, () => {
    const windowSamples = windowed().reduce((sum, d) => sum + d.samples!.length, 0)
    return atOnce().length >= guestRows.length && windowSamples >= guestRows.length
  }, 30_000)
  t.comment(`${Date.now() - started} ms: all delivered`)
  await sleep(600) // anything extra (a repeat with new content, a row twice) would show up now

  // Exactly once after de-duplication by id (unique() also fails if one id came with two contents).
  const delivered = atOnce().map((d) => `${d.samples![0].ts}:${d.samples![0].value}`)
  t.strictSame(delivered, expected, 'interval 0: each committed row once, in commit order, with its ts and value')
  const windowSamples = windowed().flatMap((d) => d.samples!.map((s) => `${s.ts}:${s.value}`))
  t.strictSame(windowSamples, expected, 'windows: each committed row in exactly one window, in order')
  const numbers = new Set(guestRows.map((r) => r.n))
  const last = acknowledged.at(-1)!
  t.strictSame(Array.from({ length: last }, (_, i) => i + 1).filter((n) => !numbers.has(n)), [], 'every acknowledged number is committed (none missing)')
  t.ok(last >= MIN_ROWS, `${last} numbers written, ${guestRows.length} rows committed (${guestRows.length - numbers.size} twice: killed after the commit, before close() returned, then retried)`)
  t.comment(`${receiver.all().length} deliveries received, ${receiver.unique().length} after dropping repeats by id`)

  sampling = false
  await sampler
  t.ok(cursors.length > 20, `${cursors.length} cursor samples`)
  const backwards = cursors.filter((c, i) => i > 0 && c.cursor < cursors[i - 1].cursor)
  t.strictSame(backwards, [], 'the persisted cursor never moved back')
  t.strictSame(cursors.filter((c) => c.cursor > c.guestLast), [], 'nor ahead of the guest\'s last committed row')
  await waitFor('the cursor at the last row', () => setup.cursor() === BigInt(guestRows.at(-1)!.seq))
  t.equal(setup.cursor(), BigInt(guestRows.at(-1)!.seq), 'finally at the last committed row')
  const log = setup.agentLog()
  t.notMatch(log, /gap in the feed/, 'the agent never saw a gap')
  t.notMatch(log, /could not store rows/)
  t.equal(setup.agents.length, 5, 'five agent processes (four killed)')
  t.comment(`${Date.now() - started} ms: checked`)
})
