import t from 'tap'
import { checkFileName, checkKpiName, isStagingName } from '../../guestfs/kpi-names'

// Contract 1's naming rules that need no store: staging names, reserved prefixes, invalid UTF-8.

t.test('staging names: starting with ".", or ending in ".tmp" or "~"', async (t) => {
  for (const name of ['.x', '.users.swp', '.', 'users.tmp', '.tmp', 'users~', '~']) t.ok(isStagingName(name), name)
  for (const name of ['users', 'users.TMP', 'tmp', 'a.tmp.b', 'x~y', 'users.csv']) t.notOk(isStagingName(name), name)
})

t.test('reserved prefixes _fedvm_ and sqlite_ (ASCII case ignored) are EPERM', async (t) => {
  for (const name of ['_fedvm_files', '_FEDVM_', 'sqlite_master', 'SQLite_x']) t.throws(() => checkKpiName(name), { code: 'EPERM' }, name)
  for (const name of ['fedvm_x', 'x_fedvm_', 'sqlite', 'sqlitex', '_fedvm']) t.doesNotThrow(() => checkKpiName(name), name)
})

t.test('a name that was not valid UTF-8 (decoded with U+FFFD) is EINVAL; over 255 bytes is ENAMETOOLONG', async (t) => {
  t.throws(() => checkFileName('a\uFFFD'), { code: 'EINVAL' })
  t.throws(() => checkFileName('x'.repeat(256)), { code: 'ENAMETOOLONG' })
  t.doesNotThrow(() => checkFileName('x'.repeat(255)))
  t.throws(() => checkFileName('é'.repeat(128)), { code: 'ENAMETOOLONG' }, 'bytes, not characters')
})
