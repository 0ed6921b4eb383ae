import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { MAX_FRAME_BYTES } from '../../../protocol/kpi-feed/frames'
import { seriesValue } from '../support/agent-process'
import { AgentSetup, VM } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { connectAsHost, FakeGuest } from '../support/fake-feed-peers'
import { waitFor } from '../../support/wait'

// Contract 2: "Frames are versioned; an unknown or malformed frame is an error on that
// connection, never a crash." Both directions, against the real processes: a fake guest (a plain
// unix socket server written by this test) feeding the real agent, and a fake host talking to
// the real guestfs feed.

const RAW = { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const stats = (last: number) => JSON.stringify({ v: 1, t: 'stats', committed: last, refused: 0, last: String(last), epoch: 'feedfeedfeedfeed' }) + '\n'
const row = (seq: number, value: unknown) => JSON.stringify({ v: 1, t: 'row', seq: String(seq), kpi: 'users', ts: 1_700_000_000_000 + seq, cols: ['current_users'], vals: [value] }) + '\n'

/**
 * Each bad frame follows a valid row on its connection (so the rows before a bad frame are seen to
 * be kept, and the reconnect backoff starts over); the agent must close the connection and say why.
 * `next` is the row the agent expects next on that connection.
 */
const BAD_FROM_GUEST: Array<[what: string, text: (next: number) => string, reason: (next: number) => RegExp]> = [
  ['not JSON', () => 'this is not a frame\n', () => /frame is not JSON/],
  ['an unknown version', (next) => JSON.stringify({ v: 2, t: 'row', seq: String(next), kpi: 'users', ts: 1, cols: [], vals: [] }) + '\n', () => /unsupported frame version 2/],
  ['an unknown frame type', () => JSON.stringify({ v: 1, t: 'rows' }) + '\n', () => /unknown frame type "rows"/],
  ['a frame only the host may send', () => JSON.stringify({ v: 1, t: 'hello', after: '0' }) + '\n', () => /the guest may not send hello/],
  ['a row whose values do not match its columns', (next) => JSON.stringify({ v: 1, t: 'row', seq: String(next), kpi: 'users', ts: 1, cols: ['a'], vals: [1, 2] }) + '\n', () => /row\.vals must be an array as long as row\.cols/],
  ['a gap in the sequence', (next) => row(next + 3, 0), (next) => new RegExp(`gap in the feed: expected row ${next}, got ${next + 3}`)],
  ['a JSON array', () => '[1,2,3]\n', () => /frame is not an object/],
]

t.test('a fake guest sending bad frames: each connection is closed with a logged reason; the agent keeps running, reconnects, loses nothing', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url], guestfs: false })
  const guest = await FakeGuest.listen(t, setup.feedPath)
  const agent = await setup.startAgent()
  const hellos: unknown[] = []
  const closing = /feed unix:.*: closing after a bad frame: /

  // The first line of a connection may be the partial tail of an earlier one (virtio-serial): skipped.
  let connection = await guest.next()
  hellos.push(await connection.line(0))
  connection.write('"tail of an earl')
  connection.write('ier frame"}\n' + stats(1) + row(1, 10))
  await waitFor('row 1 to be delivered', () => receiver.unique().length === 1)
  t.notOk(connection.isClosed, 'a partial first line is tolerated')
  t.match(agent.log(), /feed unix:.*: skipped a partial first line \(frame is not JSON/, 'and logged')

  let seq = 1
  for (const [what, text, reason] of BAD_FROM_GUEST) {
    seq++
    connection.write(row(seq, seq * 10) + text(seq + 1))
    t.ok(await connection.closedWithin(3000), `${what}: the agent closed the connection`)
    await agent.waitForLog(new RegExp(closing.source + reason(seq + 1).source))
    t.ok(agent.running, `${what}: the agent is still running`)
    connection = await guest.next()
    hellos.push(await connection.line(0))
    connection.write(stats(seq)) // a guest answers every hello with its stats first
  }

  // Two unparseable lines before any valid frame are no partial tail: the connection is closed too.
  connection.write('garbage\nmore garbage\n')
  t.ok(await connection.closedWithin(3000), 'garbage at the start of a connection: closed')
  await agent.waitForLog(new RegExp(closing.source + 'frame is not JSON'), 2)

  // A line longer than a frame may be, without a newline: closed before it fills the agent's memory.
  connection = await guest.next()
  hellos.push(await connection.line(0))
  connection.write(stats(seq))
  connection.write('{"v":1,"t":"row","pad":"' + 'x'.repeat(MAX_FRAME_BYTES + 1024))
  t.ok(await connection.closedWithin(5000), 'an endless line: closed')
  await agent.waitForLog(new RegExp(closing.source + 'frame longer than'))

  // Then a well-behaved guest: repeats at or below the cursor are dropped, new rows delivered.
  connection = await guest.next()
  hellos.push(await connection.line(0))
  connection.write(stats(seq + 2) + row(seq - 1, 0) + row(seq, seq * 10) + row(seq + 1, (seq + 1) * 10) + row(seq + 2, (seq + 2) * 10))
  const values = Array.from({ length: seq + 2 }, (_, i) => (i + 1) * 10)
  await waitFor(`rows 1 to ${seq + 2}`, () => receiver.unique().length === values.length)
  t.strictSame(receiver.unique().map((d) => d.samples![0].value), values, 'each row delivered once, in order')
  t.equal(receiver.all().length, values.length, 'and no repeat sent at all')
  const rowsKept = BAD_FROM_GUEST.map((_, i) => String(i + 2))
  t.strictSame(hellos.map((h) => (h as { after: string }).after), ['0', ...rowsKept, String(seq), String(seq)],
    'every hello carried the persisted cursor: the rows before each bad frame were kept')
  t.ok(hellos.slice(1).every((h) => isDeepStrictEqual(Object.keys(h as object).sort(), ['after', 'id', 't', 'v'])), 'hellos are well-formed')
  t.ok(isDeepStrictEqual(Object.keys(hellos[0] as object).sort(), ['after', 'id', 'resume', 't', 'v']) && (hellos[0] as { resume: boolean }).resume, 'the first one (no cursor yet) asks to resume from the acknowledged position')
  const metrics = await agent.metrics()
  t.equal(seriesValue(metrics, 'fedvm_kpi', { domain: VM, kpi: 'users', column: 'current_users' }), values.at(-1))
  t.equal(seriesValue(metrics, 'fedvm_feed_up', { domain: VM }), 1)
  t.ok(agent.running)
  t.equal(setup.agents.length, 1, 'one agent process throughout')
})

/** What a broken or hostile host may send to guestfs's feed socket. */
const BAD_FROM_HOST: Array<[what: string, text: string, reason: RegExp]> = [
  ['not JSON', 'GET / HTTP/1.1\n', /frame is not JSON/],
  ['an unknown version', JSON.stringify({ v: 2, t: 'hello', after: '0' }) + '\n', /unsupported frame version 2/],
  ['a frame only the guest may send', row(1, 1), /the host may only send hello or ack, not row/],
  ['a hello with a bad cursor', JSON.stringify({ v: 1, t: 'hello', after: '-1' }) + '\n', /hello\.after must be a decimal sequence string/],
  ['a hello with a cursor beyond 64 bits', JSON.stringify({ v: 1, t: 'hello', after: '1'.repeat(21) }) + '\n', /hello\.after/],
]

t.test('a fake host sending bad frames to guestfs is disconnected with a logged reason; guestfs keeps serving', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url] })
  const mount = setup.mount!
  await setup.startAgent()
  t.equal(await setup.write('users', 'current_users\n1\n'), 'ok')
  await waitFor('the real agent to get row 1', () => receiver.unique().length === 1)

  const closing = /feed: closing connection after a bad frame: /
  for (const [i, [what, text, reason]] of BAD_FROM_HOST.entries()) {
    const host = await connectAsHost(t, setup.feedPath)
    host.write(text)
    t.ok(await host.closedWithin(3000), `${what}: guestfs closed the connection`)
    t.strictSame(host.lines, [], `${what}: and sent it nothing`)
    const logged = await mount.logLines(closing, i + 1)
    t.equal(logged.length, i + 1, `${what}: logged`)
    t.match(logged[i], reason, `${what}: with the reason`)
  }
  // A valid hello followed by garbage: the rows came, then the connection is closed.
  const chatty = await connectAsHost(t, setup.feedPath)
  chatty.write(JSON.stringify({ v: 1, t: 'hello', after: '0' }) + '\n')
  t.match(await chatty.line(0), { t: 'stats' })
  t.match(await chatty.line(1), { t: 'row', seq: '1', vals: [1] })
  chatty.write('garbage\n')
  t.ok(await chatty.closedWithin(3000), 'garbage after a hello: closed')

  t.equal(mount.guestfs.child.exitCode, null, 'guestfs is still running')
  t.equal(await setup.write('users', 'current_users\n2\n'), 'ok', 'the mount still takes writes')
  await waitFor('the real agent to get row 2', () => receiver.unique().length === 2)
  t.strictSame(receiver.unique().map((d) => d.samples![0].value), [1, 2], 'the real agent\'s connection was not disturbed')
  const good = await connectAsHost(t, setup.feedPath)
  good.write(JSON.stringify({ v: 1, t: 'hello', after: '0' }) + '\n')
  const frames = [await good.line(0), await good.line(1), await good.line(2)]
  t.match(frames.filter((f) => f.t === 'row'), [{ seq: '1', vals: [1] }, { seq: '2', vals: [2] }], 'a good host is served from its cursor')
})
