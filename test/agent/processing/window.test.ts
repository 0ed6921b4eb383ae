import t from 'tap'
import { evaluate, type Sample, type WindowSpec } from '../../../agent/processing/window'

// The pure processing stage: what one delivery window's samples yield (raw vs processed, the
// predicate, opaque sealed values). Which samples enter a window (numbers only, or the sealed value
// of an encrypted KPI) is the monitor's choice: test/agent/engine/windows.test.ts.

const s = (ts: number, value: number | string): Sample => ({ ts, value })
const MEDIAN: WindowSpec = { format: 'processed', function: 'median' }

t.test('an empty window delivers nothing', async (t) => {
  t.equal(evaluate({ format: 'raw' }, []), undefined, 'raw')
  t.equal(evaluate(MEDIAN, []), undefined, 'processed')
  t.equal(evaluate({ format: 'raw' }, [], true), undefined, 'opaque too')
})

t.test('raw delivers every sample of the window, in order', async (t) => {
  const samples = [s(1, 5), s(2, 3), s(3, 5), s(4, -1.5)]
  t.strictSame(evaluate({ format: 'raw' }, samples), { format: 'raw', samples })
})

t.test('processed delivers one value of the window', async (t) => {
  const samples = [3, 1, 4, 1, 5, 9, 2, 6].map((value, i) => s(i, value))
  const expected = { min: 1, max: 9, mean: 3.875, median: 3.5 } as const
  for (const fn of ['min', 'max', 'mean', 'median'] as const) {
    t.strictSame(evaluate({ format: 'processed', function: fn }, samples), { format: 'processed', function: fn, value: expected[fn] }, fn)
  }
})

t.test('one sample, an odd and an even count for the median', async (t) => {
  t.strictSame(evaluate(MEDIAN, [s(1, 42)]), { format: 'processed', function: 'median', value: 42 })
  t.strictSame(evaluate(MEDIAN, [s(1, 7), s(2, 1), s(3, 4)]), { format: 'processed', function: 'median', value: 4 })
  t.strictSame(evaluate(MEDIAN, [8, 2, 6, 4].map((v) => s(v, v))), { format: 'processed', function: 'median', value: 5 })
})

t.test('raw with a predicate delivers the samples for which it holds', async (t) => {
  const spec: WindowSpec = { format: 'raw', when: { op: '>=', value: 5 } }
  t.strictSame(evaluate(spec, [s(1, 3), s(2, 5), s(3, 4), s(4, 8)]), { format: 'raw', samples: [s(2, 5), s(4, 8)] })
  t.equal(evaluate(spec, [s(5, 1), s(6, 2)]), undefined, 'nothing holds: nothing delivered')
})

t.test('processed with a predicate: the predicate is on the processed value', async (t) => {
  const spec: WindowSpec = { format: 'processed', function: 'mean', when: { op: '>', value: 10 } }
  t.strictSame(evaluate(spec, [1, 2, 30].map((v) => s(v, v))), { format: 'processed', function: 'mean', value: 11 }, 'mean 11: delivered, though two samples are ≤ 10')
  t.equal(evaluate(spec, [1, 2, 27].map((v) => s(v, v))), undefined, 'mean 10: not > 10')
})

t.test('an opaque (sealed) window passes values through untouched: raw, no function, no predicate', async (t) => {
  const sealed = [s(1, 'c2VhbGVkLTE='), s(2, 'c2VhbGVkLTI=')]
  t.strictSame(evaluate({ format: 'processed', function: 'max', when: { op: '>', value: 1e9 } }, sealed, true), { format: 'raw', samples: sealed })
  t.strictSame(evaluate({ format: 'raw', when: { op: '<', value: 0 } }, sealed.slice(0, 1), true), { format: 'raw', samples: sealed.slice(0, 1) },
    'the predicate is ignored')
})
