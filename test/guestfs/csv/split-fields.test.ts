import t from 'tap'
import fc from 'fast-check'
import { splitFields, splitWithCsvParse } from '../../../guestfs/csv/split-fields'

// guestfs splits the common unquoted file by hand (csv-parse's set-up costs ~40 µs per tiny file);
// that fast path must agree EXACTLY with csv-parse under the same settings, on any unquoted input.

// Characters a field may hold: letters, digits, number signs, and every kind of blank that a trim
// may or may not remove (csv-parse trims [ \t\f\r\n] on the left and all JS white space on the right).
/** A test name in plain ASCII: U+2028, U+0085 and friends would break the TAP stream's lines. */
const show = (text: string): string => JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

const FIELD_CHARS = ['a', 'Z', '0', '7', '.', '-', '+', 'e', '_', ';', 'é', '温', ' ', ' ', '\t', '\f', '\v', '\u00a0', '\u2028', '\u2029', '\u3000', '\ufeff', '\u0085', '\u200b', '\u0000', '\u001c']
const field = fc.array(fc.constantFrom(...FIELD_CHARS), { maxLength: 6 }).map((chars) => chars.join(''))
const line = fc.array(field, { minLength: 1, maxLength: 5 }).map((fields) => fields.join(','))
const newline = fc.constantFrom('\n', '\r\n')
const unquotedFile = fc.tuple(
  fc.array(fc.tuple(line, newline), { minLength: 1, maxLength: 4 }),
  fc.constantFrom('', '\n', '\r\n'),
).map(([lines, trailing]) => {
  const body = lines.map(([text, end], i) => i === lines.length - 1 ? text : text + end).join('')
  return body + trailing
})

t.test('the fast path agrees exactly with csv-parse on random unquoted files', async (t) => {
  let slowPath = 0
  const result = fc.check(fc.property(unquotedFile, (text) => {
    if (text.includes('"') || /\r(?!\n)/.test(text)) slowPath++
    return JSON.stringify(splitFields(text)) === JSON.stringify(splitWithCsvParse(text))
  }), { numRuns: 3000, seed: 20261125 })
  t.equal(slowPath, 0, 'every generated file takes the fast path')
  if (result.failed && result.counterexample) {
    const [text] = result.counterexample
    t.same(splitFields(text), splitWithCsvParse(text), `smallest disagreeing file: ${show(text)} (fast path vs csv-parse)`)
  } else {
    t.notOk(result.failed, `${result.numRuns} random files agree`)
  }
})

t.test('hand-picked unquoted files agree with csv-parse', async (t) => {
  const cases = [
    'a', 'a\n', 'a\r\n', '\n', '\r\n', ' ', ',', ',,\n', 'a,b\n1,2', 'a,b\r\n1,2\r\n', 'a\n\n', 'a\n\n1', '\n1,2\n',
    ' a , b \n 1 ,\t2\t\n', '1\u00a0', '\u00a01', '1\v', 'x\u2028', '\ufeffa,b\n1,2\n', 'a,b\n1,2\n3,4\n', 'a\r\n1\n',
  ]
  for (const text of cases) t.same(splitFields(text), splitWithCsvParse(text), show(text))
})

t.test('quoted input goes to csv-parse (RFC 4180)', async (t) => {
  t.same(splitFields('"a,b","say ""hi"""\n"1\n2",3\n'), [['a,b', 'say "hi"'], ['1\n2', '3']])
  t.same(splitFields('a\r1\n'), splitWithCsvParse('a\r1\n'), 'a lone CR too')
  t.same(splitFields(''), [], 'nothing at all is no line')
  t.throws(() => splitFields('"open\n'), { code: 'EINVAL' }, 'broken quoting is EINVAL')
  t.throws(() => splitFields('"a"b\n'), { code: 'EINVAL' })
})
