import t from 'tap'
import fc from 'fast-check'
import { canonicalize } from 'json-canonicalize'
import { canonicalJson } from '../../protocol/envelope/canonical-json'
import { parseExact, stringifyExact } from '../../protocol/exact-json'
import { parseDeliveries } from '../../protocol/relay/delivery'

// A 64-bit KPI integer beyond ±2^53 is a bigint in memory and an exact integer literal in JSON;
// every other number stays a double, so each value has one form on both sides of a hop.

const EDGES = ['9007199254740993', '-9223372036854775808', '9223372036854775807']

t.test('parseExact: integers beyond ±2^53 as bigint, everything else as JSON.parse reads it', async (t) => {
  t.strictSame(parseExact(`[${EDGES.join(',')},9007199254740991,-9007199254740991,1.2345678901234567,12345678901234567e3,1e400,"12345678901234567890"]`),
    [...EDGES.map(BigInt), 9007199254740991, -9007199254740991, 1.2345678901234567, 12345678901234567e3, Infinity, '12345678901234567890'])
  t.throws(() => parseExact('[12345678901234567890,'), SyntaxError, 'a syntax error is JSON.parse\'s kind, on either path')
  t.throws(() => parseExact('{"a":'), SyntaxError)
  t.strictSame(parseExact('[100000000000000000000,9223372036854775808]'), [1e20, 2 ** 63], 'beyond 64 bits: only a double can be that')
  fc.assert(fc.property(fc.jsonValue(), (value) => {
    const text = JSON.stringify(value)
    // An integral double in [2^53, 2^63) comes back as the bigint of its digits: the same number, the same text.
    t.strictSame(JSON.parse(JSON.stringify(parseExact(text), (_key, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))), JSON.parse(text))
    t.equal(stringifyExact(parseExact(text)), text)
  }), { numRuns: 300 })
})

t.test('stringifyExact: JSON.stringify (indent too) plus bigint literals; the two read each other back', async (t) => {
  const withBig = { a: [BigInt(EDGES[2]), { b: [], c: {} }, 'x"y', null, undefined], d: undefined, e: { f: new Date(0), g: [[1, 2], [3]] } }
  for (const indent of [0, 2]) {
    const same = { ...withBig, a: [7, ...withBig.a.slice(1)] }
    t.equal(stringifyExact(withBig, indent), JSON.stringify(same, null, indent).replace(/\b7\b/, EDGES[2]), `indent ${indent}`)
    t.strictSame(parseExact(stringifyExact({ v: BigInt(EDGES[1]) }, indent)), { v: BigInt(EDGES[1]) })
  }
  fc.assert(fc.property(fc.jsonValue(), fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) }), (value, big) => {
    t.equal(stringifyExact([value, big]).slice(0, -(big.toString().length + 2)), `[${JSON.stringify(value) ?? 'null'}`)
    t.equal(stringifyExact(parseExact(stringifyExact([value, big]))), stringifyExact([value, big]))
    t.equal((parseExact(stringifyExact([value, big])) as unknown[])[1], big)
  }), { numRuns: 200 })
})

t.test('canonical JSON writes a bigint as its digits; without one it equals json-canonicalize', async (t) => {
  t.equal(canonicalJson({ z: 1, a: [BigInt(EDGES[0]), 2.5] }), `{"a":[${EDGES[0]},2.5],"z":1}`)
  const body = { deliveries: [{ vm: 'v', samples: [{ value: BigInt(EDGES[2]), ts: 1 }] }] }
  t.equal(canonicalJson(parseExact(stringifyExact(body))), canonicalJson(body), 'the receiver of a hop signs over the same bytes as its sender')
  t.equal(canonicalJson({ b: [1, 'x'], a: null }), canonicalize({ b: [1, 'x'], a: null }))
})

t.test('a delivery\'s sample is a double or a 64-bit bigint beyond ±2^53, named when not', async (t) => {
  const raw = (value: unknown) => [{ id: 'd', vm: 'v', metric: 'kpi:t.c', format: 'raw', from: 1, to: 1, samples: [{ ts: 1, value }] }]
  t.strictSame(parseDeliveries(raw(BigInt(EDGES[2])), 'deliveries')[0].samples, [{ ts: 1, value: BigInt(EDGES[2]) }])
  t.throws(() => parseDeliveries(raw(2n ** 63n), 'deliveries'), { code: 'bad-request', message: /deliveries\[0\]\.samples\[0\]\.value: .*64-bit/ })
  t.throws(() => parseDeliveries(raw(5n), 'deliveries'), { code: 'bad-request', message: /deliveries\[0\]\.samples\[0\]\.value: .*beyond/ })
})
