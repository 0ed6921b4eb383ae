import t from 'tap'
import { ByteMeter } from '../../../protocol/proxy/byte-meter'
import { arrivalFigures, liveArrival, type ArrivalCounters } from '../../../protocol/roles/arrival-progress'

// The Destination's view of a live arrival, from its stream parkers' byte meters: pure, the clock
// passed in, tested case by case (live-arrival.test.ts has the meters on real relayed streams).

const MiB = 1024 * 1024

/** A parker per channel, its meter fed `[bytes, at]` as given. */
function channels (feed: { migration?: Array<[number, number]>, nbd?: Array<[number, number]>, performed?: Array<[number, number]> } = {}): ArrivalCounters['parkers'] {
  return (['migration', 'nbd', 'performed'] as const).map((channel) => {
    const received = new ByteMeter()
    for (const [bytes, at] of feed[channel] ?? []) received.add(bytes, at)
    return { channel, received }
  })
}
const session = (over: Partial<ArrivalCounters> = {}): ArrivalCounters => ({
  vmId: 'vm-1', since: 1000, step: 'prepared', expected: { memory: 64 * MiB, disks: 32 * MiB }, parkers: channels(), ...over,
})

t.test('ByteMeter: the total, the first byte\'s time, the bytes of the last whole seconds', async (t) => {
  const meter = new ByteMeter()
  meter.add(0, 500)
  t.equal(meter.firstAt, undefined, 'nothing counted for no bytes')
  for (const [bytes, at] of [[100, 10_100], [50, 10_900], [7, 11_000], [1, 12_999], [3, 13_200]]) meter.add(bytes, at)
  t.equal(meter.total, 161)
  t.equal(meter.firstAt, 10_100)
  t.equal(meter.lastSeconds(13_000, 2), 8, 'seconds 11 and 12')
  t.equal(meter.lastSeconds(13_500, 3), 158, 'seconds 10 to 12; the current one is not whole yet')
  meter.add(1000, 20_500)
  t.equal(meter.lastSeconds(21_000, 7), 1000, 'eight seconds on: second 12\'s slot counts second 20 now, the others are stale, not counted')
  t.equal(meter.lastSeconds(30_000, 7), 0, 'nothing in the last seconds')
  t.throws(() => meter.lastSeconds(30_000, 8), RangeError, 'no more seconds than it keeps')
})

t.test('liveArrival: the phase, the bytes per channel, and a rate', async (t) => {
  t.same(liveArrival(session(), 1500), { vmId: 'vm-1', since: 1000, phase: 'prepared', receivedBytes: { memory: 0, disks: 0 }, rateBytesPerSecond: 0, at: 1500 }, 'nothing came: prepared, no rate')
  t.match(liveArrival(session({ parkers: channels({ nbd: [[512 * 1024, 2000]], performed: [[7, 2000]] }) }), 2100), { phase: 'receiving', receivedBytes: { memory: 0, disks: 512 * 1024 }, rateBytesPerSecond: 0 }, 'half a MiB in 100 ms: receiving, too early for a rate (a signal channel counts toward nothing)')
  t.match(liveArrival(session({ parkers: channels({ nbd: [[2 * MiB, 2000]] }) }), 2500), { rateBytesPerSecond: 4 * MiB }, 'before a whole second: the average since the first byte, once a MiB came')
  const steady = channels({ nbd: [[MiB, 2000], [MiB, 3000], [3 * MiB, 4000]], migration: [[MiB, 4500]] })
  t.match(liveArrival(session({ parkers: steady }), 5200), { receivedBytes: { memory: MiB, disks: 5 * MiB }, rateBytesPerSecond: 2.5 * MiB }, 'then the last two whole seconds (3 and 4), both channels together')
  t.match(liveArrival(session({ parkers: steady }), 8000), { rateBytesPerSecond: 0 }, 'nothing in the last two seconds: a rate of 0, not the average since the start')
  t.match(liveArrival(session({ parkers: channels({ nbd: [[3 * MiB, 2500]] }) }), 4200), { rateBytesPerSecond: 2 * MiB }, 'the first byte within the window: counted from it (3 MiB over the 1.5 s to the last whole second)')
  t.match(liveArrival(session({ step: 'finishing', parkers: steady }), 5200), { phase: 'finishing' })
  t.match(liveArrival(session({ step: 'verifying', parkers: steady }), 5200), { phase: 'verifying' })
})

t.test('arrivalFigures: the Controller\'s fallback, what came against the ticket\'s amounts, with no memory pass', async (t) => {
  t.same(arrivalFigures(session(), 1500), { path: 'live', phase: 'disks', totalBytes: 96 * MiB, remainingBytes: 96 * MiB, rateBytesPerSecond: 0, at: 1500 })
  t.same(arrivalFigures(session({ parkers: channels({ nbd: [[2 * MiB, 2000], [2 * MiB, 3000]] }) }), 4000), { path: 'live', phase: 'disks', totalBytes: 96 * MiB, remainingBytes: 92 * MiB, rateBytesPerSecond: 2 * MiB, etaMs: 46000, at: 4000 })
  t.match(arrivalFigures(session({ parkers: channels({ nbd: [[3 * MiB, 2000]], migration: [[MiB, 3000]] }) }), 4000), { phase: 'memory', remainingBytes: 92 * MiB })
  t.match(arrivalFigures(session({ parkers: channels({ migration: [[100 * MiB, 3000]] }) }), 4000), { phase: 'memory', remainingBytes: 0 }, 'later memory passes overrun the amounts: nothing left, not below zero')
  t.match(arrivalFigures(session({ step: 'finishing', parkers: channels({ nbd: [[MiB, 2000]] }) }), 4000), { phase: 'switchover' }, 'Finish running: the switchover; never done, the Source says when it is')
})
