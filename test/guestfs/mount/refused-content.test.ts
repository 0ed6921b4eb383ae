import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'
import type { BytesArg } from '../../support/fs-worker-client'

// Contract 1: more than two lines, a value count that differs from the header's, duplicate column
// names (ignoring ASCII case) or the reserved name `ts` → EINVAL, returned by close(). "A refused
// write stores nothing, is counted, and is logged with the reason." Each case is written both to
// an existing KPI (its rows and columns must not change) and to a new name (no table may appear).

type Tap = tap.Test

interface Case {
  what: string
  content: BytesArg
}

async function checkRefused (t: Tap, cases: Case[], reason: RegExp): Promise<void> {
  const mount = await TestMount.create(t)
  const app = mount.app
  t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'kpi'), data: 'a,b\n1,2\n' }), 'ok', 'an existing KPI')
  const before = { rows: mount.rows('kpi'), columns: mount.columns('kpi'), tables: mount.kpiTables() }

  for (const [i, { what, content }] of cases.entries()) {
    t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', 'kpi'), data: content }), 'close EINVAL', `${what}: close() returns EINVAL`)
    t.equal(await app.outcome({ op: 'write', path: mount.path('unencrypted', `new${i}`), data: content }), 'close EINVAL', `${what}: also as a new KPI`)
  }

  t.same(mount.rows('kpi'), before.rows, 'the existing KPI got no row')
  t.same(mount.columns('kpi'), before.columns, 'and no column')
  t.same(mount.kpiTables(), before.tables, 'no table was created for the new names')
  t.same(await app.value({ op: 'readdir', path: `${mount.mountpoint}/unencrypted` }), ['kpi'], 'the refused new names are not listed')

  const refusals = await mount.logLines(/refused/, cases.length * 2)
  t.equal(refusals.length, cases.length * 2, 'each refusal is logged once')
  for (const line of refusals) {
    t.match(line, /unencrypted\/(kpi|new\d+)/, 'the log line names the file')
    t.match(line, /EINVAL/, 'and the errno')
    t.match(line, reason, 'and the reason')
  }
  t.match(refusals[refusals.length - 1], new RegExp(`refused so far: ${cases.length * 2}\\b`), 'refusals are counted')
}

t.test('more than two lines → EINVAL', async (t) => {
  await checkRefused(t, [
    { what: 'three lines', content: 'a\nb\nc\n' },
    { what: 'header, values and a second value line', content: 'a,b\n1,2\n3,4\n' },
    { what: 'two trailing newlines', content: 'a,b\n1,2\n\n' },
    { what: 'a blank line between header and values', content: 'a,b\n\n1,2\n' },
    { what: 'CRLF, three lines', content: 'a\r\n1\r\n2\r\n' },
  ], /lines/)
})

t.test('a value count that differs from the header\'s → EINVAL', async (t) => {
  await checkRefused(t, [
    { what: 'fewer values', content: 'a,b\n1\n' },
    { what: 'more values', content: 'a,b\n1,2,3\n' },
    { what: 'one label, two values', content: 'a\n1,2\n' },
    { what: 'quoted comma makes one value', content: 'a,b\n"1,2"\n' },
  ], /header has \d+ columns/)
})

t.test('duplicate column names, ignoring ASCII case → EINVAL', async (t) => {
  await checkRefused(t, [
    { what: 'a,a', content: 'a,a\n1,2\n' },
    { what: 'a,A', content: 'a,A\n1,2\n' },
    { what: 'Load,LOAD among others', content: 'x,Load,y,LOAD\n1,2,3,4\n' },
    { what: 'a label equal to a generated columnN', content: 'column2,\n1,2\n' },
  ], /duplicate column/)
})

t.test('the reserved column name ts, in any ASCII case (and SQLite\'s rowid, oid, _rowid_) → EINVAL', async (t) => {
  await checkRefused(t, [
    { what: 'ts', content: 'ts\n1\n' },
    { what: 'TS among others', content: 'a,TS\n1,2\n' },
    { what: 'Ts', content: 'Ts,b\n1,2\n' },
    { what: 'rowid', content: 'rowid\n1\n' },
    { what: 'OID', content: 'a,OID\n1,2\n' },
    { what: '_rowid_', content: '_rowid_,b\n1,2\n' },
  ], /reserved/)
})

// Beyond the contract's list, content that is not a KPI CSV at all is refused the same way.
t.test('content that is not CSV text (broken quoting, not UTF-8, a control character in a label) → EINVAL', async (t) => {
  await checkRefused(t, [
    { what: 'unterminated quote', content: 'a,b\n"1,2\n' },
    { what: 'text after a closing quote', content: 'a,b\n"1"x,2\n' },
    { what: 'a stray 0xff', content: { base64: Buffer.from([0x61, 0x0a, 0xff, 0x0a]).toString('base64') } },
    { what: 'a truncated UTF-8 sequence', content: { base64: Buffer.from([0x61, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0xc3]).toString('base64') } },
    { what: 'a quoted line break in a label', content: '"a\nb",c\n1,2\n' },
    { what: 'a NUL in a label', content: 'a\u0000,c\n1,2\n' },
  ], /not valid CSV|not UTF-8|control character/)
})

t.test('applications that check close() see the refusal through the shell too', async (t) => {
  const mount = await TestMount.create(t)
  const cat = await mount.sh('printf "a\\nb\\nc\\n" | cat > unencrypted/three')
  t.not(cat.code, 0, 'cat exits non-zero')
  t.match(cat.stderr, /Invalid argument/, 'cat reports EINVAL')
  const tee = await mount.sh('printf "ts\\n1\\n" | tee unencrypted/reserved >/dev/null')
  t.not(tee.code, 0, 'tee exits non-zero')
  t.match(tee.stderr, /Invalid argument/, 'tee reports EINVAL')
  const ok = await mount.sh('echo 1,2 > unencrypted/fine')
  t.equal(ok.code, 0, 'a valid write through shell redirection succeeds')
  t.same(mount.kpiTables(), ['fine'])
  t.equal(mount.totalRows(), 1)
})
