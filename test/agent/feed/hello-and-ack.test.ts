import t from 'tap'
import { AgentSetup } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { FakeGuest } from '../support/fake-feed-peers'
import { waitFor } from '../../support/wait'

// The host's side of the feed's hand-over frames (Contract 2), against the real agent
// with a fake guest: a hello nobody answered is said again (through a virtio-serial port a hello
// can be lost while the VM boots), only the stats naming this connection's hello start it (older
// frames a port still held are skipped), the agent continues after the guest's acknowledged
// position, and acks every durable batch with the guest database's epoch.

const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const EPOCH = 'abcdefabcdefabcd'
const stats = (last: number, acked: number, hello?: unknown) => JSON.stringify({ v: 1, t: 'stats', committed: last, refused: 0, last: String(last), epoch: EPOCH, acked: String(acked), ...(hello ? { hello } : {}) }) + '\n'
const row = (seq: number) => JSON.stringify({ v: 1, t: 'row', seq: String(seq), kpi: 'k', ts: 1_700_000_000_000 + seq, cols: ['v'], vals: [seq] }) + '\n'

t.test('hello retried until answered; stale frames skipped; continued after the acknowledged position; acks carry the epoch', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url], guestfs: false })
  const guest = await FakeGuest.listen(t, setup.feedPath)
  await setup.startAgent()
  const connection = await guest.next()
  const first = await connection.line(0)
  t.strictSame({ after: first.after, resume: first.resume }, { after: '0', resume: true }, 'a host with no cursor asks to resume from the acknowledged position (after 0 for older guests)')
  const second = await connection.line(1, 9000) // nobody answered: said again after ~5 s
  t.equal(second.t, 'hello')
  t.not(second.id, first.id, 'with a new id')

  // What a virtio-serial port may still hold from before, then the answer to the second hello.
  connection.write(row(3) + stats(9, 2, first.id) + row(3) + row(4) + stats(9, 5) + row(6))
  connection.write(stats(9, 5, second.id) + row(6) + row(7) + row(8) + row(9))
  const values = () => receiver.unique().map((d) => d.samples![0].value)
  await waitFor('rows 6..9', () => values().length >= 4, 10_000)
  t.strictSame(values(), [6, 7, 8, 9], 'only rows after the answering stats, from the acknowledged position on, once each')
  t.equal(setup.cursor(), 9n, 'the cursor: the last row')
  const acks = await waitFor('an ack of row 9', () => {
    const frames = connection.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((f) => f.t === 'ack')
    return frames.some((f) => f.seq === '9') && frames
  }, 10_000)
  t.ok(acks.every((f) => f.epoch === EPOCH && Number(f.seq) >= 6 && Number(f.seq) <= 9), 'acks name the epoch and rows the agent stored')
  t.strictSame(acks.map((f) => Number(f.seq)), [...acks.map((f) => Number(f.seq))].sort((x, y) => x - y), 'in order')
  t.equal(connection.lines.filter((l) => JSON.parse(l).t === 'hello').length, 2, 'no hello after the answer')
  t.notOk(connection.isClosed, 'the connection stays up')
})
