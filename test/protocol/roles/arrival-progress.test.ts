import t from 'tap'
import { arrivalFigures, liveArrival, type ArrivalCounters } from '../../../protocol/roles/arrival-progress'

// The Destination's view of a live arrival, from its stream parkers' counters: pure, tested case by case
// (live-arrival.test.ts has the counters on real relayed streams).

const MiB = 1024 * 1024
const session = (over: Partial<ArrivalCounters> = {}): ArrivalCounters => ({
  vmId: 'vm-1', since: 1000, step: 'prepared', expected: { memory: 64 * MiB, disks: 32 * MiB },
  parkers: [
    { channel: 'migration', receivedBytes: 0, firstByteAt: undefined },
    { channel: 'nbd', receivedBytes: 0, firstByteAt: undefined },
    { channel: 'performed', receivedBytes: 0, firstByteAt: undefined },
  ],
  ...over,
})
const flowing = (memory: number, disks: number, firstByteAt = 2000): ArrivalCounters['parkers'] => [
  { channel: 'migration', receivedBytes: memory, firstByteAt: memory > 0 ? firstByteAt + 500 : undefined },
  { channel: 'nbd', receivedBytes: disks, firstByteAt: disks > 0 ? firstByteAt : undefined },
  { channel: 'performed', receivedBytes: 7, firstByteAt },
]

t.test('liveArrival: the phase, the bytes per channel, the average rate since the first byte', async (t) => {
  t.same(liveArrival(session(), 1500), { vmId: 'vm-1', since: 1000, phase: 'prepared', receivedBytes: { memory: 0, disks: 0 }, rateBytesPerSecond: 0, at: 1500 }, 'nothing came: prepared, no rate')
  t.match(liveArrival(session({ parkers: flowing(0, 512 * 1024) }), 2100), { phase: 'receiving', receivedBytes: { memory: 0, disks: 512 * 1024 }, rateBytesPerSecond: 0 }, 'half a MiB in 100 ms: receiving, too early for a rate')
  t.match(liveArrival(session({ parkers: flowing(MiB, 3 * MiB) }), 4000), { receivedBytes: { memory: MiB, disks: 3 * MiB }, rateBytesPerSecond: 2 * MiB }, '4 MiB in the 2 s since the first byte (a signal channel counts toward nothing)')
  t.match(liveArrival(session({ parkers: flowing(1000, 0) }), 3500), { rateBytesPerSecond: 1000 }, 'after a second, a rate however little came')
  t.match(liveArrival(session({ step: 'finishing', parkers: flowing(MiB, MiB) }), 4000), { phase: 'finishing' })
  t.match(liveArrival(session({ step: 'verifying', parkers: flowing(MiB, MiB) }), 4000), { phase: 'verifying' })
})

t.test('arrivalFigures: the Controller\'s fallback, what came against the ticket\'s amounts, with no memory pass', async (t) => {
  t.same(arrivalFigures(session(), 1500), { path: 'live', phase: 'disks', totalBytes: 96 * MiB, remainingBytes: 96 * MiB, rateBytesPerSecond: 0, at: 1500 })
  t.same(arrivalFigures(session({ parkers: flowing(0, 4 * MiB) }), 4000), { path: 'live', phase: 'disks', totalBytes: 96 * MiB, remainingBytes: 92 * MiB, rateBytesPerSecond: 2 * MiB, etaMs: 46000, at: 4000 })
  t.match(arrivalFigures(session({ parkers: flowing(MiB, 3 * MiB) }), 4000), { phase: 'memory', remainingBytes: 92 * MiB })
  t.match(arrivalFigures(session({ parkers: flowing(100 * MiB, 0) }), 4000), { phase: 'memory', remainingBytes: 0 }, 'later memory passes overrun the amounts: nothing left, not below zero')
  t.match(arrivalFigures(session({ step: 'finishing', parkers: flowing(MiB, MiB) }), 4000), { phase: 'switchover' }, 'Finish running: the switchover, never done before the Source says so')
})
