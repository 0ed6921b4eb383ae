import t from 'tap'
import { typedValue } from '../../../guestfs/csv/typed-value'

// "Values: integer → INTEGER, decimal → REAL, empty → NULL, anything else → TEXT." Integers are
// bigint so better-sqlite3 binds them as INTEGER (a JS number would be stored as REAL).

t.test('integers become bigint, within 64 bits', async (t) => {
  for (const [field, value] of [['0', 0n], ['42', 42n], ['-7', -7n], ['+3', 3n], ['007', 7n], ['-0', 0n],
    ['9223372036854775807', 9223372036854775807n], ['-9223372036854775808', -9223372036854775808n]] as const) {
    t.equal(typedValue(field), value, field)
  }
  t.equal(typedValue('9223372036854775808'), 9223372036854775808, 'beyond 64 bits: REAL, like any large number')
})

t.test('decimals become numbers (REAL)', async (t) => {
  for (const [field, value] of [['0.5', 0.5], ['-1.25', -1.25], ['.5', 0.5], ['5.', 5], ['1e3', 1000], ['2.5E-2', 0.025], ['+1.5', 1.5]] as const) {
    t.equal(typedValue(field), value, field)
  }
})

t.test('empty is NULL; anything else is TEXT, unchanged', async (t) => {
  t.equal(typedValue(''), null)
  for (const field of ['abc', '0x1F', '1,5', '12abc', 'NaN', 'Infinity', '-', '.', 'e5', '1e', '1.2.3', '2026-11-25', ' 1', '1 ', '١٢٣']) {
    t.equal(typedValue(field), field, JSON.stringify(field))
  }
})
