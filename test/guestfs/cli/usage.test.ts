import t from 'tap'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runFedvm } from '../../support/guestfs-mount'

// `fedvm guestfs mount MOUNTPOINT --db FILE`: a bad command line exits 2 with a message naming
// the problem and the usage line, and mounts nothing.

t.test('fedvm guestfs usage errors exit 2 with a message and the usage line, and create nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-guestfs-usage-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const mountpoint = join(dir, 'kpi')
  const db = join(dir, 'kpi.db')
  const cases: Array<[string, string[], RegExp]> = [
    ['no verb', ['guestfs'], /unknown guestfs command/],
    ['an unknown verb', ['guestfs', 'unmount', mountpoint], /unknown guestfs command "unmount"/],
    ['no mount point', ['guestfs', 'mount', '--db', db], /MOUNTPOINT/],
    ['two mount points', ['guestfs', 'mount', mountpoint, join(dir, 'other'), '--db', db], /exactly one MOUNTPOINT/],
    ['no --db', ['guestfs', 'mount', mountpoint], /--db FILE is required/],
    ['--db without a value', ['guestfs', 'mount', mountpoint, '--db'], /--db/],
    ['a bad --sync', ['guestfs', 'mount', mountpoint, '--db', db, '--sync', 'sometimes'], /--sync must be normal or full, not "sometimes"/],
    ['an unknown option', ['guestfs', 'mount', mountpoint, '--db', db, '--fast'], /--fast/],
  ]
  await Promise.all(cases.map(async ([what, args, message]) => {
    const result = await runFedvm(args)
    t.equal(result.code, 2, `${what}: exit 2`)
    t.match(result.stderr, message, `${what}: says what is wrong`)
    t.match(result.stderr, /usage: fedvm guestfs mount MOUNTPOINT --db FILE/, `${what}: shows the usage`)
  }))
  t.same(await readdir(dir), [], 'no mount point and no database were created')
})
