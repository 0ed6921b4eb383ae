import t from 'tap'
import { kibToBytes, nsToSeconds } from '../../host/base-units'
import { seededRandom } from '../support/seeded-random'

/** n ns as an exact decimal number of seconds, by integer arithmetic only. */
function exactSeconds (ns: bigint): string {
  const whole = ns / 1_000_000_000n
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '')
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`
}

t.test('nanoseconds print as the exact decimal number of seconds', async t => {
  t.equal(`${nsToSeconds(967795000)}`, '0.967795', 'the value once seen as 0.9677950000000001')
  t.equal(`${967795000 * 1e-9}`, '0.9677950000000001', 'what multiplying by 1e-9 gives (why the division)')
  t.equal(`${nsToSeconds(0)}`, '0')
  t.equal(`${nsToSeconds(1)}`, '1e-9')
  t.equal(`${nsToSeconds(12_500_000_000)}`, '12.5')
})

t.test('every value up to 15 significant digits (about 11.5 days of CPU time in ns) prints exactly', async t => {
  const seed = 0x5eed16
  const random = seededRandom(seed)
  let wrong = 0
  for (let i = 0; i < 20000; i++) {
    // Spread over magnitudes: 1 ns .. 1e15 ns.
    const digits = 1 + Math.floor(random() * 15)
    const ns = Math.floor(random() * 10 ** digits)
    const printed = `${nsToSeconds(ns)}`
    const expected = exactSeconds(BigInt(ns))
    // JS prints below 1e-6 with an exponent: compare as the same number then.
    if (printed !== expected && Number(printed) !== Number(expected)) {
      if (wrong++ < 5) t.equal(printed, expected, `${ns} ns (seed ${seed})`)
    }
  }
  t.equal(wrong, 0, `no value printed with rounding noise (seed ${seed})`)
})

t.test('KiB to bytes is exact', async t => {
  t.equal(kibToBytes(131072), 134217728)
  t.equal(kibToBytes(2 ** 40), 2 ** 50)
})
