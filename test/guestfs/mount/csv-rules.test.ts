import t from 'tap'
import { TestMount, quoteIdentifier } from '../../support/guestfs-mount'

// Contract 1, CSV rules, end to end through a real mount: each file is written by an fs-worker
// child (open + write + close) and the row is read back from SQLite with typeof() for the types.

async function writeKpi (mount: TestMount, name: string, content: string): Promise<string> {
  return mount.app.outcome({ op: 'write', path: mount.path('unencrypted', name), data: content })
}

/** Each row as [column, typeof, value] triples for the given columns, in insertion order. */
function typedRows (mount: TestMount, table: string, columns: string[]): Array<Array<[string, string, unknown]>> {
  const select = columns.map((c, i) => `typeof(${quoteIdentifier(c)}) AS t${i}, ${quoteIdentifier(c)} AS v${i}`).join(', ')
  return mount.query<Record<string, unknown>>(`SELECT ${select} FROM ${quoteIdentifier(table)} ORDER BY rowid`)
    .map((row) => columns.map((c, i) => [c, row[`t${i}`] as string, row[`v${i}`]]))
}

function kpiColumns (mount: TestMount, table: string): string[] {
  return mount.columns(table).map((column) => column.name).filter((name) => name !== 'ts')
}

t.test('a two-line file is a header line then a value line', async (t) => {
  const mount = await TestMount.create(t)
  const before = Date.now()
  t.equal(await writeKpi(mount, 'users', 'current_users,load\n17,0.42\n'), 'ok')
  t.same(mount.columns('users').map(({ name, type, notnull }) => ({ name, type, notnull })), [
    { name: 'ts', type: 'INTEGER', notnull: 1 },
    { name: 'current_users', type: '', notnull: 0 },
    { name: 'load', type: '', notnull: 0 },
  ], 'ts INTEGER NOT NULL, then the CSV columns in file order')
  const [{ ts, kind }] = mount.query<{ ts: number, kind: string }>('SELECT ts, typeof(ts) AS kind FROM users')
  t.equal(kind, 'integer')
  t.ok(ts >= before - 5 && ts <= Date.now() + 5, 'ts is the commit time in Unix milliseconds')
  t.same(typedRows(mount, 'users', ['current_users', 'load']), [[['current_users', 'integer', 17], ['load', 'real', 0.42]]])
})

t.test('a one-line file is a value line with an empty header: columns are columnN', async (t) => {
  const mount = await TestMount.create(t)
  t.equal(await writeKpi(mount, 'http', '200,OK,3.5\n'), 'ok')
  t.same(kpiColumns(mount, 'http'), ['column1', 'column2', 'column3'])
  t.same(typedRows(mount, 'http', ['column1', 'column2', 'column3']), [[['column1', 'integer', 200], ['column2', 'text', 'OK'], ['column3', 'real', 3.5]]])
  // An explicitly empty header line means the same.
  t.equal(await writeKpi(mount, 'empty-header', '\n7,8\n'), 'ok')
  t.same(kpiColumns(mount, 'empty-header'), ['column1', 'column2'])
  t.same(typedRows(mount, 'empty-header', ['column1', 'column2']), [[['column1', 'integer', 7], ['column2', 'integer', 8]]])
})

t.test('a column without a label is named columnN, N its 1-based position', async (t) => {
  const mount = await TestMount.create(t)
  t.equal(await writeKpi(mount, 'partial', 'a,,c,\n1,2,3,4\n'), 'ok')
  t.same(kpiColumns(mount, 'partial'), ['a', 'column2', 'c', 'column4'])
  t.same(mount.query('SELECT a, column2, c, column4 FROM partial'), [{ a: 1, column2: 2, c: 3, column4: 4 }])
})

t.test('RFC 4180 quoting: delimiters, doubled quotes and line breaks inside quoted fields', async (t) => {
  const mount = await TestMount.create(t)
  t.equal(await writeKpi(mount, 'quoted', '"name, with comma","say ""hi""",plain\n"1,5","a ""b"" c","multi\nline"\n'), 'ok')
  t.same(kpiColumns(mount, 'quoted'), ['name, with comma', 'say "hi"', 'plain'])
  t.same(typedRows(mount, 'quoted', ['name, with comma', 'say "hi"', 'plain']), [[
    ['name, with comma', 'text', '1,5'],
    ['say "hi"', 'text', 'a "b" c'],
    ['plain', 'text', 'multi\nline'],
  ]], 'a quoted line break is part of the value, not a third line')
  // Quoting groups characters; it does not change a value's type, and a quoted empty field is empty.
  t.equal(await writeKpi(mount, 'quoted-types', 'i,r,e\n"12","2.5",""\n'), 'ok')
  t.same(typedRows(mount, 'quoted-types', ['i', 'r', 'e']), [[['i', 'integer', 12], ['r', 'real', 2.5], ['e', 'null', null]]])
})

t.test('LF or CRLF line ends, and one trailing newline is optional', async (t) => {
  const mount = await TestMount.create(t)
  const forms = ['a,b\n1,2\n', 'a,b\r\n1,2\r\n', 'a,b\n1,2', 'a,b\r\n1,2', 'a,b\r\n1,2\n', 'a,b\n1,2\r\n']
  for (const content of forms) t.equal(await writeKpi(mount, 'ends', content), 'ok', JSON.stringify(content))
  t.same(mount.query('SELECT typeof(a) AS ta, a, typeof(b) AS tb, b FROM ends'), forms.map(() => ({ ta: 'integer', a: 1, tb: 'integer', b: 2 })),
    'every form stores the same row (no stray CR or newline in a value)')
  t.equal(await writeKpi(mount, 'one-line', '5\r\n'), 'ok')
  t.same(mount.query('SELECT typeof(column1) AS t, column1 FROM "one-line"'), [{ t: 'integer', column1: 5 }])
})

t.test('values: integer → INTEGER, decimal → REAL, empty → NULL, anything else → TEXT', async (t) => {
  const mount = await TestMount.create(t)
  const header = 'int,neg,plus,zero,big,dec,negdec,exp,dot,empty,spaced,word,hex,mixed,date,inf'
  const values = '42,-7,+3,0,9223372036854775807,0.25,-1.5,1e3,.5,,  8  ,hello,0x1F,12abc,2026-11-25,Infinity'
  t.equal(await writeKpi(mount, 'types', `${header}\n${values}\n`), 'ok')
  const columns = header.split(',')
  const [row] = typedRows(mount, 'types', columns)
  t.same(Object.fromEntries(row.map(([column, type]) => [column, type])), {
    int: 'integer', neg: 'integer', plus: 'integer', zero: 'integer', big: 'integer',
    dec: 'real', negdec: 'real', exp: 'real', dot: 'real',
    empty: 'null',
    spaced: 'integer',
    word: 'text', hex: 'text', mixed: 'text', date: 'text', inf: 'text',
  })
  const big = mount.query<{ big: string }>('SELECT CAST(big AS TEXT) AS big FROM types')[0].big
  t.equal(big, '9223372036854775807', 'a 64-bit integer is stored exactly')
  t.same(Object.fromEntries(row.map(([column, , value]) => [column, value])), {
    int: 42, neg: -7, plus: 3, zero: 0, big: 9223372036854775807, dec: 0.25, negdec: -1.5, exp: 1000, dot: 0.5,
    empty: null, spaced: 8, word: 'hello', hex: '0x1F', mixed: '12abc', date: '2026-11-25', inf: 'Infinity',
  })
})

t.test('a new column in a later write is added to the table, older rows read NULL', async (t) => {
  const mount = await TestMount.create(t)
  t.equal(await writeKpi(mount, 'grow', 'a\n1\n'), 'ok')
  t.equal(await writeKpi(mount, 'grow', 'a,b\n2,3\n'), 'ok')
  t.equal(await writeKpi(mount, 'grow', 'c,B\nx,4\n'), 'ok', 'columns in another order, one differing only in ASCII case')
  t.equal(await writeKpi(mount, 'grow', '9\n'), 'ok', 'a one-line write adds column1')
  t.same(kpiColumns(mount, 'grow'), ['a', 'b', 'c', 'column1'], 'columns in first-seen order; "B" is column b')
  t.same(mount.query('SELECT a, b, c, column1 FROM grow ORDER BY rowid'), [
    { a: 1, b: null, c: null, column1: null },
    { a: 2, b: 3, c: null, column1: null },
    { a: null, b: 4, c: 'x', column1: null },
    { a: null, b: null, c: null, column1: 9 },
  ])
})
