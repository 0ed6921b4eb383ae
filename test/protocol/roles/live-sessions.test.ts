import t from 'tap'
import { checkMigrationId } from '../../../host/libvirt/live-params'
import { liveProgress } from '../../../host/libvirt/live-progress'
import { liveMigrationId, liveMigrationProgress } from '../../../protocol/roles/live-sessions'
import { ProgressBoard } from '../../../protocol/roles/migration-progress'

t.test('the socket id of a live migration: from the source token, the same at both ends, a name libvirt may use', async (t) => {
  const token = 'Zx_-9aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ'
  t.equal(liveMigrationId(token), liveMigrationId(token), 'both ends derive the same id')
  t.not(liveMigrationId(token), liveMigrationId(`${token}x`), 'another token, another id')
  t.equal(checkMigrationId(liveMigrationId(token)), liveMigrationId(token), 'lower-case hex, 32 characters')
  t.notOk(liveMigrationId(token).includes(token.slice(0, 8)), 'the token itself never names a socket file')
})

t.test('libvirt\'s job statistics become the site\'s progress board entry', async (t) => {
  const stats = { memory_total: 256 << 20, memory_remaining: 64 << 20, memory_processed: 192 << 20, memory_iteration: 2, memory_bps: 100 << 20, memory_dirty_rate: 120, disk_total: 64 << 20, disk_remaining: 0, time_elapsed: 1500 }
  const board = new ProgressBoard()
  board.report('vm-1', liveMigrationProgress(liveProgress(stats), 1000))
  t.same(board.get('vm-1'), {
    path: 'live', phase: 'memory', totalBytes: 320 << 20, remainingBytes: 64 << 20, rateBytesPerSecond: 100 << 20,
    etaMs: 640, iteration: 2, dirtyPagesPerSecond: 120, at: 1000,
  })
  const stalled = liveMigrationProgress(liveProgress({ disk_total: 64 << 20, disk_remaining: 64 << 20 }), 2000)
  t.equal(stalled.phase, 'disks', 'the disks move first')
  t.notOk('etaMs' in stalled, 'no rate yet: no ETA')
  board.end('vm-1')
  t.same(board.list(), [], 'the entry goes when the migration ends')
})
