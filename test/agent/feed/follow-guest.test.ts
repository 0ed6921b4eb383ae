import t from 'tap'
import { followGuest } from '../../../agent/feed/follow-guest'
import type { StatsFrame } from '../../../protocol/kpi-feed/frames'

// How the agent's cursor follows the guest database (its epoch, last row and acknowledged
// position): every case of agent/feed/follow-guest.ts.

const E1 = 'e1e1e1e1e1e1e1e1'
const E2 = 'e2e2e2e2e2e2e2e2'
const stats = (epoch: string, last: number, acked?: number): StatsFrame => ({ v: 1, t: 'stats', committed: last, refused: 0, last: String(last), epoch, ...(acked === undefined ? {} : { acked: String(acked) }) })

t.test('a host new to the VM continues after the acknowledged position', async (t) => {
  t.strictSame(followGuest({ cursor: 0n }, stats(E1, 40, 25), 25n), { epoch: E1, cursor: 25n, rehello: false }, 'a resuming hello: the guest already streams from there')
  t.strictSame(followGuest({ cursor: 0n }, stats(E1, 40, 0), 0n), { epoch: E1, cursor: 0n, rehello: false }, 'nothing acknowledged yet: from the first row')
  t.strictSame(followGuest({ cursor: 0n }, stats(E1, 40), 0n), { epoch: E1, cursor: 0n, rehello: false }, 'an older guest (no acked): as before')
})

t.test('the same database', async (t) => {
  t.strictSame(followGuest({ epoch: E1, cursor: 30n }, stats(E1, 40, 30), 30n), { epoch: E1, cursor: 30n, rehello: false }, 'in step')
  t.strictSame(followGuest({ epoch: E1, cursor: 30n }, stats(E1, 40, 20), 30n), { epoch: E1, cursor: 30n, rehello: false }, 'an ack that did not reach the guest: this host\'s own cursor wins')
  const back = followGuest({ epoch: E1, cursor: 10n }, stats(E1, 40, 35), 10n)
  t.match(back, { epoch: E1, cursor: 35n, rehello: true, reason: /rows 11\.\.35 were acknowledged by another host/ }, 'the VM came back after another host took rows: continue after them')
  t.match(followGuest({ epoch: E1, cursor: 50n }, stats(E1, 40, 40), 50n), { cursor: 40n, rehello: true, reason: /went back from row 50 to 40/ }, 'restored from a snapshot: after its last row')
  t.strictSame(followGuest({ epoch: E1, cursor: 30n }, stats(E1, 40, 30)), { epoch: E1, cursor: 30n, rehello: false }, 'a later stats frame on the connection')
})

t.test('another database', async (t) => {
  t.match(followGuest({ epoch: E1, cursor: 30n }, stats(E2, 5, 0), 30n), { epoch: E2, cursor: 0n, rehello: true, reason: /epoch e1e1e1e1e1e1e1e1 → e2e2e2e2e2e2e2e2/ }, 'replaced: from its first row')
  t.match(followGuest({ epoch: E1, cursor: 30n }, stats(E2, 9, 4), 30n), { epoch: E2, cursor: 4n, rehello: true }, 'replaced and partly taken by another host: after its acknowledged position')
  t.match(followGuest({ epoch: E1, cursor: 0n }, stats(E2, 9), 0n), { epoch: E2, cursor: 0n, rehello: false }, 'an older guest, nothing read yet: no second hello needed')
})

t.test('a cursor kept from before epochs existed', async (t) => {
  t.strictSame(followGuest({ cursor: 12n }, stats(E1, 40), 12n), { epoch: E1, cursor: 12n, rehello: false }, 'adopted with the epoch it meets')
})

t.test('the previous host\'s hand-over (feed-cursor.json) against the guest\'s acked', async (t) => {
  const arrived = followGuest({ cursor: 0n }, stats(E1, 40, 25), 25n, { epoch: E1, seq: 30n })
  t.match(arrived, { epoch: E1, cursor: 30n, rehello: true, reason: /handed over its cursor: continuing after row 30/ }, 'an ack lost in the save: the hand-over is further along, say hello after it')
  t.strictSame(followGuest({ cursor: 0n }, stats(E1, 40, 25), 25n, { epoch: E1, seq: 20n }), { epoch: E1, cursor: 25n, rehello: false }, 'a hand-over behind the guest\'s acked: the acked wins')
  t.strictSame(followGuest({ cursor: 0n }, stats(E1, 40, 25), 25n, { epoch: E2, seq: 30n }), { epoch: E1, cursor: 25n, rehello: false }, 'a hand-over for another database: ignored')
  t.strictSame(followGuest({ cursor: 0n }, stats(E1, 40, 25), 25n, { epoch: E1, seq: 90n }), { epoch: E1, cursor: 25n, rehello: false }, 'a hand-over past the guest\'s last row: ignored')
  t.match(followGuest({ epoch: E1, cursor: 10n }, stats(E1, 40, 25), 10n, { epoch: E1, seq: 33n }), { cursor: 33n, rehello: true, reason: /rows 11\.\.33 were acknowledged by another host/ }, 'back on a host with an old cursor: after the hand-over')
  t.strictSame(followGuest({ epoch: E1, cursor: 36n }, stats(E1, 40, 25), 36n, { epoch: E1, seq: 33n }), { epoch: E1, cursor: 36n, rehello: false }, 'this host\'s own cursor ahead (its own old hand-over): it wins')
})
