import t from 'tap'
import { holds } from '../../../agent/processing/predicate'
import { PREDICATE_OPS, type PredicateOp } from '../../../protocol/descriptor/specifier-schema'

// Scheme (c) of the paper: deliver only when the predicate holds. Each op against a value below,
// equal to and above its threshold.

const EXPECTED: Record<PredicateOp, [below: boolean, equal: boolean, above: boolean]> = {
  '>': [false, false, true],
  '>=': [false, true, true],
  '<': [true, false, false],
  '<=': [true, true, false],
  '==': [false, true, false],
  '!=': [true, false, true],
}

t.test('the six operators, and only those', async (t) => {
  t.strictSame([...PREDICATE_OPS].sort(), Object.keys(EXPECTED).sort())
})

t.test('each operator below, at and above its threshold', async (t) => {
  for (const op of PREDICATE_OPS) {
    const [below, equal, above] = EXPECTED[op]
    t.equal(holds({ op, value: 1000 }, 999.5), below, `999.5 ${op} 1000`)
    t.equal(holds({ op, value: 1000 }, 1000), equal, `1000 ${op} 1000`)
    t.equal(holds({ op, value: 1000 }, 1000.5), above, `1000.5 ${op} 1000`)
  }
})

t.test('negative thresholds and zero', async (t) => {
  t.equal(holds({ op: '<', value: -5 }, -6), true)
  t.equal(holds({ op: '>', value: -5 }, 0), true)
  t.equal(holds({ op: '==', value: 0 }, -0), true, '-0 equals 0')
})

t.test('no predicate: every value is delivered', async (t) => {
  for (const value of [-1, 0, 1e9]) t.equal(holds(undefined, value), true)
})
