import t from 'tap'
import { withCopyRate, type CopyStart } from '../../../protocol/roles/copy-rate'
import { ProgressBoard, type MigrationProgress } from '../../../protocol/roles/migration-progress'

const MiB = 1024 * 1024
const disks = (remainingMiB: number, at: number, extra: Partial<MigrationProgress> = {}): MigrationProgress =>
  ({ path: 'live', phase: 'disks', totalBytes: 128 * MiB, remainingBytes: remainingMiB * MiB, rateBytesPerSecond: 0, iteration: 0, dirtyPagesPerSecond: 0, at, ...extra })

/** Feeds reports in order as the board does; answers each rated report. */
function run (reports: MigrationProgress[]): MigrationProgress[] {
  let start: CopyStart | undefined
  return reports.map((next) => {
    const rated = withCopyRate(start, next)
    start = rated.start
    return rated.progress
  })
}

// As QEMU's mirror advanced under an 8 MiB/s cap here: its first 16 MiB at once, then in irregular steps; a report every 500 ms.
t.test('a disks copy: its average since the first report, none in the first two seconds', async (t) => {
  const rated = run([disks(112, 1000), disks(111, 1500), disks(96, 2000), disks(80, 3000), disks(80, 3500), disks(64, 5000), disks(16, 11_000)])
  t.same(rated.slice(0, 3).map((p) => p.rateBytesPerSecond), [0, 0, 0], 'the first burst is not counted, and the first two seconds give no rate')
  t.notOk(rated.slice(0, 3).some((p) => p.etaMs !== undefined), 'nor an ETA')
  t.match(rated[3], { rateBytesPerSecond: 16 * MiB, etaMs: 5000 }, '112 → 80 MiB in 2 s: rough at first')
  t.match(rated[4], { rateBytesPerSecond: Math.round(32 * MiB / 2.5), etaMs: 6250 }, '112 → 80 MiB in 2.5 s, 80 MiB left')
  t.match(rated[6], { rateBytesPerSecond: Math.round(9.6 * MiB), etaMs: Math.round(16 / 9.6 * 1000) }, 'the average settles as the copy goes on')
})

t.test('reports with a rate of their own, cold ones and other phases pass as they are', async (t) => {
  const memory: MigrationProgress = { ...disks(50, 9000), phase: 'memory', rateBytesPerSecond: 4 * MiB, etaMs: 12_500 }
  t.same(withCopyRate({ at: 1, remainingBytes: 2 }, memory), { progress: memory, start: undefined })
  const cold: MigrationProgress = { path: 'cold', phase: 'transfer', totalBytes: 10, remainingBytes: 5, rateBytesPerSecond: 0, at: 2 }
  t.same(withCopyRate(undefined, cold), { progress: cold, start: undefined })
  const measured = disks(80, 4000, { rateBytesPerSecond: 3 * MiB, etaMs: 1 })
  t.same(withCopyRate({ at: 0, remainingBytes: 128 * MiB }, measured).progress, measured, 'a rate libvirt gave is kept')
  t.match(withCopyRate({ at: 0, remainingBytes: 100 * MiB }, disks(100.5, 3000)).progress, { rateBytesPerSecond: 0 }, 'more left than at the start (the guest wrote): no rate')
})

t.test('the board rates a live disks copy and forgets its start when the migration ends', async (t) => {
  const board = new ProgressBoard()
  for (const p of [disks(112, 1000), disks(96, 2000), disks(80, 5000)]) board.report('vm-1', p)
  t.match(board.get('vm-1'), { rateBytesPerSecond: 8 * MiB, etaMs: 10_000 })
  board.end('vm-1')
  board.report('vm-1', disks(112, 10_000))
  board.report('vm-1', disks(96, 11_000))
  t.match(board.get('vm-1'), { rateBytesPerSecond: 0 }, 'a new migration of the VM starts its own average')
})
