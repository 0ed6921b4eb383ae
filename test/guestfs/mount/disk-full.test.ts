import t from 'tap'
import { execFile } from 'node:child_process'
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { distFile } from '../../support/dist-paths'
import { FsWorker } from '../../support/fs-worker-client'
import { isMounted } from '../../support/guestfs-mount'

// Contract 1: "a full disk is ENOSPC", returned by close(), with nothing stored; guestfs keeps
// serving and stores again once space returns. The database lives on a small tmpfs that this
// test mounts (and unmounts, also on failure).

const run = promisify(execFile)
type GuestfsProcessModule = typeof import('../../../guestfs/guestfs-process')

function fillDisk (dir: string): string {
  const filler = join(dir, 'filler')
  const fd = openSync(filler, 'w')
  const block = Buffer.alloc(64 * 1024, 0x55)
  try {
    for (let size = block.length; size > 0;) {
      try {
        writeSync(fd, block, 0, size)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
        size >>= 1
      }
    }
  } finally {
    closeSync(fd)
  }
  return filler
}

t.test('close() returns ENOSPC while the database disk is full, and guestfs stores again once space returns', { skip: process.getuid?.() !== 0 && 'mounting a tmpfs needs root' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-guestfs-full-'))
  const dbDir = join(dir, 'db')
  const mountpoint = join(dir, 'kpi')
  await mkdir(dbDir)
  await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'fedvm-test', dbDir])
  const app = FsWorker.start()
  let guestfs: Awaited<ReturnType<GuestfsProcessModule['startGuestfsProcess']>> | undefined
  t.teardown(async () => {
    await app.stop()
    await guestfs?.kill()
    if (await isMounted(mountpoint)) await run('fusermount', ['-uz', mountpoint])
    await run('umount', [dbDir]).catch(() => run('umount', ['-l', dbDir]))
    await rm(dir, { recursive: true, force: true })
  })
  const { startGuestfsProcess } = require(distFile('guestfs', 'guestfs-process.js')) as GuestfsProcessModule
  guestfs = await startGuestfsProcess(mountpoint, join(dbDir, 'kpi.db'))
  const kpi = join(mountpoint, 'unencrypted', 'kpi')
  t.equal(await app.outcome({ op: 'write', path: kpi, data: 'v\n1\n' }), 'ok')

  const filler = fillDisk(dbDir)
  const big = `v,pad\n2,${'x'.repeat(256 * 1024)}\n`
  t.equal(await app.outcome({ op: 'write', path: kpi, data: big }), 'close ENOSPC', 'an existing KPI')
  t.equal(await app.outcome({ op: 'write', path: join(mountpoint, 'unencrypted', 'fresh'), data: big }), 'close ENOSPC', 'a new KPI')
  t.equal((await app.read(kpi)).toString(), 'v\n1\n', 'reading gives the last committed content')
  t.same(await app.value({ op: 'readdir', path: join(mountpoint, 'unencrypted') }), ['kpi'])
  t.match(guestfs.log(), /refused unencrypted\/kpi \(ENOSPC\): the disk holding the KPI database is full/, 'the refusal is logged with its reason')

  unlinkSync(filler)
  t.equal(await app.outcome({ op: 'write', path: kpi, data: big }), 'ok', 'stored once space returned')
  t.equal((await app.read(kpi)).toString(), big)
  t.equal(await guestfs.stop(), 0, 'guestfs never crashed and exits cleanly')
  guestfs = undefined
})
