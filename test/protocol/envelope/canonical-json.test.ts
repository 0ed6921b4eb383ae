import t from 'tap'
import fc from 'fast-check'
import { canonicalize } from 'json-canonicalize'
import { canonicalJson } from '../../../protocol/envelope/canonical-json'

// The fast canonicalizer must write exactly what json-canonicalize writes (RFC 8785): signatures of
// sites running either would otherwise not verify.
t.test('equals json-canonicalize on random JSON values', async (t) => {
  const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'toJSON', '10', '9', '0', '01', '4294967295', '4294967294', 'a', 'B', 'é', '\ud83d\ude00', '\u00e9'))
  const value = fc.letrec((tie) => ({
    any: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }),
      fc.array(tie('any')), fc.dictionary(key, tie('any'))),
  })).any
  fc.assert(fc.property(value, (v) => canonicalJson(v) === canonicalize(v)), { numRuns: 800 })
  // Parsed JSON, as a receiver sees it (own "__proto__" members included).
  fc.assert(fc.property(fc.jsonValue(), (v) => {
    const parsed = JSON.parse(JSON.stringify(v))
    return canonicalJson(parsed) === canonicalize(parsed)
  }), { numRuns: 500 })
  const parsed = JSON.parse('{"b":1,"__proto__":{"x":[1,2]},"10":true,"9":false,"a":{"toJSON":3,"z":-0,"y":1e21}}')
  t.equal(canonicalJson(parsed), canonicalize(parsed))
  t.equal(canonicalJson(parsed), '{"10":true,"9":false,"__proto__":{"x":[1,2]},"a":{"toJSON":3,"z":0,"y":1e+21},"b":1}', 'an object with a toJSON member is written as JSON.stringify writes it, as json-canonicalize does')
  t.equal(canonicalJson({ a: undefined, b: [undefined, 1] }), '{"b":[null,1]}')
  t.throws(() => canonicalJson({ a: Infinity }), /Non-finite/)
  t.throws(() => canonicalJson([NaN]), /Non-finite/)
})
