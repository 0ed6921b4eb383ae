import t from 'tap'
import { evaluate, Window, type Sample, type WindowSpec } from '../../../agent/processing/window'

// The pure processing stage (STYLE.md: add, flush, reset): numeric samples only, unless the window
// is opaque (an encrypted KPI passing through); raw vs processed; the predicate.

const s = (ts: number, value: number | string): Sample => ({ ts, value })
const MEDIAN: WindowSpec = { format: 'processed', function: 'median' }

t.test('an empty window delivers nothing', async (t) => {
  for (const spec of [{ format: 'raw' } as const, MEDIAN]) {
    const window = new Window(spec)
    t.equal(window.size, 0)
    t.equal(window.flush(), undefined, spec.format)
  }
  t.equal(evaluate(MEDIAN, []), undefined)
  t.equal(evaluate({ format: 'raw' }, [], true), undefined, 'opaque too')
})

t.test('raw delivers every sample of the window, in order, then starts empty', async (t) => {
  const window = new Window({ format: 'raw' })
  const samples = [s(1, 5), s(2, 3), s(3, 5), s(4, -1.5)]
  for (const sample of samples) t.equal(window.add(sample), true)
  t.equal(window.size, 4)
  t.strictSame(window.flush(), { format: 'raw', samples })
  t.equal(window.size, 0, 'flush empties it')
  t.equal(window.flush(), undefined, 'a second flush has nothing')
})

t.test('processed delivers one value of the window', async (t) => {
  const values = [3, 1, 4, 1, 5, 9, 2, 6]
  const expected = { min: 1, max: 9, mean: 3.875, median: 3.5 } as const
  for (const fn of ['min', 'max', 'mean', 'median'] as const) {
    const window = new Window({ format: 'processed', function: fn })
    values.forEach((value, i) => window.add(s(i, value)))
    t.strictSame(window.flush(), { format: 'processed', function: fn, value: expected[fn] }, fn)
  }
})

t.test('one sample, and an even count for the median', async (t) => {
  const one = new Window(MEDIAN)
  one.add(s(1, 42))
  t.strictSame(one.flush(), { format: 'processed', function: 'median', value: 42 })
  const even = new Window(MEDIAN)
  for (const value of [8, 2, 6, 4]) even.add(s(value, value))
  t.strictSame(even.flush(), { format: 'processed', function: 'median', value: 5 })
})

t.test('NULL values are skipped: add() keeps nothing and the result is over the numbers only', async (t) => {
  const window = new Window({ format: 'processed', function: 'mean' })
  t.equal(window.add(s(1, 1)), true)
  t.equal(window.add({ ts: 2, value: null as unknown as number }), false, 'NULL refused')
  t.equal(window.add(s(3, 3)), true)
  t.equal(window.size, 2)
  t.strictSame(window.flush(), { format: 'processed', function: 'mean', value: 2 })
  const onlyNull = new Window({ format: 'raw' })
  t.equal(onlyNull.add({ ts: 1, value: null as unknown as number }), false)
  t.equal(onlyNull.flush(), undefined, 'a window of NULLs is empty')
})

t.test('text values are refused: add() returns false and keeps nothing', async (t) => {
  for (const spec of [{ format: 'raw' } as const, MEDIAN]) {
    const window = new Window(spec)
    t.equal(window.add(s(1, 'abc')), false, `text refused (${spec.format})`)
    t.equal(window.add(s(2, '12')), false, `numeric-looking text refused too (${spec.format})`)
    t.equal(window.add(s(3, Number.NaN)), false, 'NaN refused')
    t.equal(window.add(s(4, Number.POSITIVE_INFINITY)), false, 'Infinity refused')
    t.equal(window.size, 0)
    t.equal(window.flush(), undefined)
  }
})

t.test('raw with a predicate delivers the samples for which it holds', async (t) => {
  const window = new Window({ format: 'raw', when: { op: '>=', value: 5 } })
  for (const [ts, value] of [[1, 3], [2, 5], [3, 4], [4, 8]]) window.add(s(ts, value))
  t.strictSame(window.flush(), { format: 'raw', samples: [s(2, 5), s(4, 8)] })
  for (const [ts, value] of [[5, 1], [6, 2]]) window.add(s(ts, value))
  t.equal(window.flush(), undefined, 'nothing holds: nothing delivered')
  t.equal(window.size, 0, 'and the window is empty anyway')
})

t.test('processed with a predicate: the predicate is on the processed value', async (t) => {
  const spec: WindowSpec = { format: 'processed', function: 'mean', when: { op: '>', value: 10 } }
  const window = new Window(spec)
  for (const value of [1, 2, 30]) window.add(s(value, value)) // mean 11: delivered, though two samples are ≤ 10
  t.strictSame(window.flush(), { format: 'processed', function: 'mean', value: 11 })
  for (const value of [1, 2, 27]) window.add(s(value, value)) // mean 10: not > 10
  t.equal(window.flush(), undefined)
  t.equal(window.size, 0, 'the refused window does not carry over')
  window.add(s(9, 12))
  t.strictSame(window.flush(), { format: 'processed', function: 'mean', value: 12 }, 'the next window is on its own')
})

t.test('reset() drops the window', async (t) => {
  const window = new Window({ format: 'raw' })
  window.add(s(1, 1))
  window.reset()
  t.equal(window.size, 0)
  t.equal(window.flush(), undefined)
})

t.test('an opaque (sealed) window passes values through untouched: raw, no function, no predicate', async (t) => {
  const sealed = ['c2VhbGVkLTE=', 'c2VhbGVkLTI=']
  const window = new Window({ format: 'processed', function: 'max', when: { op: '>', value: 1e9 } }, true)
  t.equal(window.add(s(1, sealed[0])), true, 'a sealed (base64) value is accepted')
  t.equal(window.add(s(2, sealed[1])), true)
  t.strictSame(window.flush(), { format: 'raw', samples: [s(1, sealed[0]), s(2, sealed[1])] })
  t.strictSame(evaluate({ format: 'raw', when: { op: '<', value: 0 } }, [s(5, sealed[0])], true), { format: 'raw', samples: [s(5, sealed[0])] },
    'evaluate() of an opaque window ignores the predicate')
})

t.test('evaluate() is what flush() computes (a window restored from disk)', async (t) => {
  const samples = [s(1, 7), s(2, 1), s(3, 4)]
  const window = new Window(MEDIAN)
  for (const sample of samples) window.add(sample)
  t.strictSame(evaluate(MEDIAN, samples), window.flush())
  t.strictSame(evaluate(MEDIAN, samples), { format: 'processed', function: 'median', value: 4 })
})
