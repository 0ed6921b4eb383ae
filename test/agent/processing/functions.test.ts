import t from 'tap'
import { applyFunction } from '../../../agent/processing/functions'
import { PROCESSING_FUNCTIONS } from '../../../protocol/descriptor/specifier-schema'

// "processed (min, max, mean, exact median over the delivery window)", a pure stage
// whose tests pin every function and edge.

const SEQUENCE = [3, 1, 4, 1, 5, 9, 2, 6]

t.test('the four functions of the paper, and only those', async (t) => {
  t.strictSame([...PROCESSING_FUNCTIONS].sort(), ['max', 'mean', 'median', 'min'])
})

t.test('a known sequence gives its min, max, mean and exact median', async (t) => {
  t.equal(applyFunction('min', SEQUENCE), 1)
  t.equal(applyFunction('max', SEQUENCE), 9)
  t.equal(applyFunction('mean', SEQUENCE), 31 / 8)
  // sorted: 1 1 2 3 | 4 5 6 9 → the mean of the two middle values
  t.equal(applyFunction('median', SEQUENCE), 3.5)
})

t.test('an empty window has no value for any function', async (t) => {
  for (const fn of PROCESSING_FUNCTIONS) t.equal(applyFunction(fn, []), undefined, fn)
})

t.test('one sample is its own min, max, mean and median', async (t) => {
  for (const fn of PROCESSING_FUNCTIONS) t.equal(applyFunction(fn, [-7.25]), -7.25, fn)
})

t.test('median: odd count is the middle value, even count the mean of the two middle ones', async (t) => {
  t.equal(applyFunction('median', [5, 1, 3]), 3, 'odd, unsorted input')
  t.equal(applyFunction('median', [4, 1, 3, 2]), 2.5, 'even, unsorted input')
  t.equal(applyFunction('median', [10, 20]), 15, 'two samples')
  t.equal(applyFunction('median', [2, 9, 2, 2]), 2, 'duplicates around the middle')
  t.equal(applyFunction('median', [-1, -10, 100]), -1, 'sorted numerically, not as text')
  t.equal(applyFunction('median', [10, 9, 100, 1000, 2]), 10, 'numeric order (as text, "100" < "2")')
})

t.test('the input is not reordered', async (t) => {
  const values = [9, 1, 5, 3]
  applyFunction('median', values)
  t.strictSame(values, [9, 1, 5, 3])
})

t.test('negative and fractional values', async (t) => {
  const values = [-2.5, 0, 2.5, -0.5]
  t.equal(applyFunction('min', values), -2.5)
  t.equal(applyFunction('max', values), 2.5)
  t.equal(applyFunction('mean', values), -0.125)
  t.equal(applyFunction('median', values), -0.25)
})
