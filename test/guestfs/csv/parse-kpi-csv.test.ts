import t from 'tap'
import { parseKpiCsv } from '../../../guestfs/csv/parse-kpi-csv'

// Contract 1's CSV rules, on the parser alone (no FUSE, no SQLite).

const parse = (text: string) => parseKpiCsv(Buffer.from(text, 'utf8'))

t.test('a two-line file is a header line then a value line', async (t) => {
  t.same(parse('current_users,load\n17,0.42\n'), { columns: ['current_users', 'load'], values: [17n, 0.42] })
})

t.test('a one-line file is a value line with an empty header; unlabelled columns are columnN', async (t) => {
  t.same(parse('200,OK\n'), { columns: ['column1', 'column2'], values: [200n, 'OK'] })
  t.same(parse('\n7,8'), { columns: ['column1', 'column2'], values: [7n, 8n] }, 'an empty header line')
  t.same(parse('a,,c,\n1,2,3,4'), { columns: ['a', 'column2', 'c', 'column4'], values: [1n, 2n, 3n, 4n] }, 'N is the 1-based position')
  t.same(parse(' , b \n1,2'), { columns: ['column1', 'b'], values: [1n, 2n] }, 'a blank label is no label; labels are trimmed')
})

t.test('RFC 4180 quoting', async (t) => {
  t.same(parse('"a,b","say ""hi"""\n"1,5","x"\n'), { columns: ['a,b', 'say "hi"'], values: ['1,5', 'x'] })
  t.same(parse('v\n"two\nlines"\n'), { columns: ['v'], values: ['two\nlines'] }, 'a quoted line break belongs to the value')
  t.same(parse('v\n"two\r\nlines"'), { columns: ['v'], values: ['two\r\nlines'] })
  t.same(parse('i,r,e\n"12","2.5",""\n'), { columns: ['i', 'r', 'e'], values: [12n, 2.5, null] }, 'quoting does not change the type')
  t.same(parse('a,b\n  "x" ,"y"  \n'), { columns: ['a', 'b'], values: ['x', 'y'] }, 'blanks around a quoted field are trimmed')
  t.same(parse('a\n" padded "\n'), { columns: ['a'], values: [' padded '] }, 'blanks inside quotes are kept')
})

t.test('LF or CRLF, one trailing newline optional', async (t) => {
  const expected = { columns: ['a', 'b'], values: [1n, 2n] }
  for (const text of ['a,b\n1,2\n', 'a,b\r\n1,2\r\n', 'a,b\n1,2', 'a,b\r\n1,2', 'a,b\r\n1,2\n', 'a,b\n1,2\r\n']) {
    t.same(parse(text), expected, JSON.stringify(text))
  }
  t.same(parse('5\n'), { columns: ['column1'], values: [5n] })
  t.same(parse('5\r\n'), { columns: ['column1'], values: [5n] })
})

t.test('typed values', async (t) => {
  t.same(parse('a,b,c,d,e,f,g\n-3,4.5,,x, 6 ,1e-3,+0\n').values, [-3n, 4.5, null, 'x', 6n, 0.001, 0n])
})

t.test('refused with EINVAL, each with its reason', async (t) => {
  const refusals: Array<[string, string, RegExp]> = [
    ['three lines', 'a\n1\n2\n', /3 lines/],
    ['two trailing newlines', 'a\n1\n\n', /3 lines/],
    ['an empty file', '', /empty/],
    ['fewer values than labels', 'a,b\n1\n', /header has 2 columns but the value line has 1/],
    ['more values than labels', 'a\n1,2\n', /header has 1 columns but the value line has 2/],
    ['duplicate labels', 'a,a\n1,2\n', /duplicate column name "a"/],
    ['duplicate labels ignoring ASCII case', 'Load,LOAD\n1,2\n', /duplicate column name "LOAD"/],
    ['a label equal to a generated name', 'column2,\n1,2\n', /duplicate column name "column2"/],
    ['ts', 'ts\n1\n', /reserved/],
    ['TS', 'a,TS\n1,2\n', /reserved/],
    ['rowid', 'rowid\n1\n', /reserved/],
    ['_ROWID_', '_ROWID_\n1\n', /reserved/],
    ['oid', 'oid\n1\n', /reserved/],
    ['a control character in a label', '"a\tb"\n1\n', /control character/],
    ['an unterminated quote', 'a\n"1\n', /not valid CSV/],
    ['text after a closing quote', 'a\n"1"2\n', /not valid CSV/],
  ]
  for (const [what, text, reason] of refusals) {
    t.throws(() => parse(text), { name: 'FsError', code: 'EINVAL', message: reason }, what)
  }
  t.throws(() => parseKpiCsv(Buffer.from([0x61, 0x0a, 0xc3, 0x28])), { code: 'EINVAL', message: /not UTF-8/ }, 'invalid UTF-8')
})

t.test('non-ASCII case is not folded: É and é are different column names', async (t) => {
  t.same(parse('É,é\n1,2\n').columns, ['É', 'é'])
  t.same(parse('température,温度\n21.5,22\n'), { columns: ['température', '温度'], values: [21.5, 22n] })
})
