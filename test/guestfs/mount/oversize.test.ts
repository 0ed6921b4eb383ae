import t from 'tap'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { TestMount, type KpiDir } from '../../support/guestfs-mount'

// Contract 1: "content over 1 MiB is EFBIG at write() or close() and no prefix of it is committed".
// An application that ignores the failed write() and closes must see EFBIG from close() too, and
// the first 1,048,576 bytes must not become a row (unencrypted: a cut-off value; encrypted: a corrupt box).

const MIB = 1024 * 1024
const CHUNK = 64 * 1024

type Tap = tap.Test

/** Writes `content` through one descriptor in chunks; returns the first failing write's errno (or 'ok') and close()'s outcome. */
async function writeOversize (mount: TestMount, dir: KpiDir, name: string, content: Buffer): Promise<{ write: string, close: string }> {
  const fd = await mount.app.value<number>({ op: 'open', path: mount.path(dir, name), flags: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC })
  let write = 'ok'
  for (let at = 0; at < content.length && write === 'ok';) {
    const reply = await mount.app.run({ op: 'writeFd', fd, data: { base64: content.subarray(at, at + CHUNK).toString('base64') } })
    if (reply.ok) at += reply.value as number
    else write = `write ${reply.failure.code}`
  }
  return { write, close: await mount.app.outcome({ op: 'close', fd }) }
}

async function checkNothingStored (t: Tap, mount: TestMount, dir: KpiDir, content: Buffer): Promise<void> {
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path(dir, 'kpi'), data: dir === 'unencrypted' ? 'b\n7\n' : { base64: randomBytes(64).toString('base64') } }), 'ok', 'an earlier sample')
  const before = { rows: mount.rows('kpi'), read: await mount.app.read(mount.path(dir, 'kpi')) }

  const existing = await writeOversize(mount, dir, 'kpi', content)
  t.equal(existing.write, 'write EFBIG', 'the write past 1 MiB fails with EFBIG')
  t.equal(existing.close, 'close EFBIG', 'and close() returns EFBIG too')
  const fresh = await writeOversize(mount, dir, 'fresh', content)
  t.same(fresh, { write: 'write EFBIG', close: 'close EFBIG' }, 'the same for a new name')

  t.same(mount.rows('kpi'), before.rows, 'the existing KPI got no row (no prefix was committed)')
  t.same(await mount.app.read(mount.path(dir, 'kpi')), before.read, 'reading gives the last committed content')
  t.notOk(mount.hasTable('fresh'), 'no table for the new name')
  t.same(await mount.app.value({ op: 'readdir', path: `${mount.mountpoint}/${dir}` }), ['kpi'], 'the refused new name is not listed')
  const refusals = await mount.logLines(/refused .*EFBIG/, 2)
  t.equal(refusals.length, 2, 'each refusal is logged with its errno')
  t.match(refusals[1], /refused so far: 2\b/, 'and counted')
}

t.test('unencrypted: b=12345 cut at 1 MiB is not stored as b=12', async (t) => {
  const mount = await TestMount.create(t)
  // Header and digits fill exactly 1 MiB (allowed); the last digits and the newline go past it.
  const content = Buffer.from(`b\n${'1'.repeat(MIB - 4)}12345\n`)
  await checkNothingStored(t, mount, 'unencrypted', content)
})

t.test('encrypted: a sealed box cut at 1 MiB is not stored', async (t) => {
  const mount = await TestMount.create(t)
  await checkNothingStored(t, mount, 'encrypted', randomBytes(MIB + 100))
})

t.test('exactly 1 MiB is accepted, and the next sample on the same name is fine after a refusal', async (t) => {
  const mount = await TestMount.create(t)
  const content = Buffer.from(`b\n${'1'.repeat(MIB - 4)}\n`)
  t.equal(content.length, MIB - 1)
  t.same(await writeOversize(mount, 'unencrypted', 'kpi', Buffer.concat([content, Buffer.from('\n')])), { write: 'ok', close: 'close EINVAL' },
    'exactly 1 MiB reaches the CSV rules (a blank third line is EINVAL, not EFBIG)')
  t.same(await writeOversize(mount, 'unencrypted', 'kpi', content), { write: 'ok', close: 'ok' }, 'just under 1 MiB is stored')
  t.same(await writeOversize(mount, 'unencrypted', 'kpi', Buffer.alloc(MIB + 1, 0x31)), { write: 'write EFBIG', close: 'close EFBIG' })
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('unencrypted', 'kpi'), data: 'b\n5\n' }), 'ok', 'a new open starts a new sample')
  const rows = mount.rows('kpi')
  t.equal(rows.length, 2, 'the accepted sample and the one after the refusal, nothing of the refused one')
  t.equal(rows[1].b, 5)
})
