import t from 'tap'
import { formatKpiMetric, parseKpiMetric } from '../../../protocol/descriptor/kpi-metric'

// A KPI metric names exactly one table and column. guestfs takes any file name as a table and any
// CSV label as a column, dots and quotes included: such names are quoted as SQL quotes identifiers.

const READ: Array<[text: string, table: string, column?: string]> = [
  ['kpi:users.current_users', 'users', 'current_users'],
  ['kpi:secret', 'secret'],
  ['kpi:revenue.v2', 'revenue', 'v2'],
  ['kpi:"revenue.v2"', 'revenue.v2'],
  ['kpi:"app.v2".latency', 'app.v2', 'latency'],
  ['kpi:app."v2.latency"', 'app', 'v2.latency'],
  ['kpi:"app.v2"."p.99"', 'app.v2', 'p.99'],
  ['kpi:"say ""hi"""', 'say "hi"'],
  ['kpi:"a""b".c', 'a"b', 'c'],
  ['kpi:"users"', 'users'],
  ['kpi:users."current_users"', 'users', 'current_users'],
  ['kpi:ünïcode tåble.cöl umn', 'ünïcode tåble', 'cöl umn'],
  ['kpi:"; DROP TABLE x; --".v', '; DROP TABLE x; --', 'v'],
]

for (const [text, table, column] of READ) {
  t.test(`reads ${text}`, async (t) => {
    t.strictSame(parseKpiMetric(text), column === undefined ? { table } : { table, column })
    t.strictSame(parseKpiMetric(formatKpiMetric(column === undefined ? { table } : { table, column })), parseKpiMetric(text), 'formatting gives it back')
  })
}

const REFUSED: Array<[text: string, message: RegExp]> = [
  ['kpi:app.v2.latency', /could name more than one table and column: .*kpi:"app\.v2"\.latency or kpi:app\."v2\.latency"/],
  ['kpi:"app".v2.latency', /a column name holding a dot is quoted, e\.g\. kpi:"app"\."v2\.latency"/],
  ['kpi:', /the table name is empty/],
  ['kpi:users.', /the column name is empty/],
  ['kpi:.users', /the table name is empty/],
  ['kpi:""', /the table name is empty/],
  ['kpi:"revenue.v2', /no closing quote/],
  ['kpi:"revenue"x', /only \.COLUMN may follow the quoted table name/],
  ['kpi:a."b"c', /nothing may follow the quoted column name/],
  ['kpi:a"b.c', /the table name "a\\"b" holds a double quote/],
  ['cpu.time', /a KPI is kpi:TABLE\.COLUMN or kpi:TABLE/],
]

for (const [text, message] of REFUSED) {
  t.test(`refuses ${text}`, async (t) => {
    const result = parseKpiMetric(text)
    t.ok('error' in result, JSON.stringify(result))
    if ('error' in result) t.match(result.error, message)
  })
}

t.test('formatting quotes only the names that need it', async (t) => {
  t.equal(formatKpiMetric({ table: 'users', column: 'n' }), 'kpi:users.n')
  t.equal(formatKpiMetric({ table: 'revenue.v2' }), 'kpi:"revenue.v2"')
  t.equal(formatKpiMetric({ table: 'a"b', column: 'x.y' }), 'kpi:"a""b"."x.y"')
})
