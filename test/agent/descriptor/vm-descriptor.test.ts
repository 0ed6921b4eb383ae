import t from 'tap'
import { kpiTarget, parseDescriptor, type VmDescriptor } from '../../../agent/descriptor/vm-descriptor'
import { AgentError } from '../../../agent/errors'

// Contract 3: "Invalid specifiers are refused at load with a message naming the field."

const KEY = 'daVrEvsmEg1Zc9GiRkbwfBFuUlHEhk8c0gb/8iPvhwQ='
const RAW = { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const MEDIAN = { ...RAW, monitoringIntervalMs: 1000, deliveryIntervalMs: 10000, format: 'processed', function: 'median' }

function descriptor (monitoring: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'web-1', primarySite: { id: 'site-a', publicKey: KEY }, monitoring, ...extra }
}

function refusal (json: unknown): AgentError {
  try {
    parseDescriptor(json, 'web-1.json')
  } catch (err) {
    if (err instanceof AgentError) return err
    throw err
  }
  throw new Error(`accepted: ${JSON.stringify(json)}`)
}

/** The bad specifier is the second one, so the index in the message is checked too. */
const BAD_SPECIFIERS: Array<[what: string, spec: Record<string, unknown>, message: RegExp]> = [
  ['metric missing', { ...RAW, metric: undefined }, /monitoring\[1\]\.metric: /],
  ['metric not a data point or KPI', { ...RAW, metric: 'CPU time' }, /monitoring\[1\]\.metric: must be kpi:TABLE\.COLUMN/],
  ['metric kpi: without a name', { ...RAW, metric: 'kpi:' }, /monitoring\[1\]\.metric: /],
  ['metric kpi:TABLE. with an empty column', { ...RAW, metric: 'kpi:users.' }, /monitoring\[1\]\.metric: the column name is empty/],
  // guestfs takes names holding dots: a bare name with two dots could be table a.b column c, or table a column b.c.
  ['metric kpi:a.b.c (two readings)', { ...RAW, metric: 'kpi:app.v2.latency' }, /monitoring\[1\]\.metric: "kpi:app\.v2\.latency" could name more than one table and column: quote/],
  ['metric with an unclosed quote', { ...RAW, metric: 'kpi:"revenue.v2' }, /monitoring\[1\]\.metric: the quoted table name has no closing quote/],
  ['monitoringIntervalMs negative', { ...RAW, monitoringIntervalMs: -1 }, /monitoring\[1\]\.monitoringIntervalMs: /],
  ['monitoringIntervalMs fractional', { ...RAW, monitoringIntervalMs: 1.5 }, /monitoring\[1\]\.monitoringIntervalMs: /],
  ['monitoringIntervalMs as text', { ...RAW, monitoringIntervalMs: '1000' }, /monitoring\[1\]\.monitoringIntervalMs: .*expected number/],
  // Node's timers take at most 2^31-1 ms; a longer interval would silently fire every millisecond.
  ['monitoringIntervalMs beyond a timer\'s range', { ...RAW, monitoringIntervalMs: 2 ** 31 }, /monitoring\[1\]\.monitoringIntervalMs: /],
  ['deliveryIntervalMs missing', { ...RAW, deliveryIntervalMs: undefined }, /monitoring\[1\]\.deliveryIntervalMs: /],
  ['deliveryIntervalMs beyond a timer\'s range', { ...RAW, deliveryIntervalMs: 3_000_000_000 }, /monitoring\[1\]\.deliveryIntervalMs: /],
  ['format unknown', { ...RAW, format: 'cooked' }, /monitoring\[1\]\.format: /],
  ['function unknown', { ...MEDIAN, function: 'avg' }, /monitoring\[1\]\.function: .*"min"\|"max"\|"mean"\|"median"/],
  ['processed without a function', { ...MEDIAN, function: undefined }, /monitoring\[1\]\.function: processed format needs a function/],
  ['raw with a function', { ...RAW, function: 'max' }, /monitoring\[1\]\.function: a raw specifier takes no function/],
  ['when.op unknown', { ...RAW, when: { op: '=>', value: 1 } }, /monitoring\[1\]\.when\.op: /],
  ['when.value as text', { ...RAW, when: { op: '>', value: '1000' } }, /monitoring\[1\]\.when\.value: .*expected number/],
  ['when.value missing', { ...RAW, when: { op: '>' } }, /monitoring\[1\]\.when\.value: /],
  ['when with an unknown key', { ...RAW, when: { op: '>', value: 1, or: 2 } }, /monitoring\[1\]\.when\.or: is not a known setting/],
  ['encrypt not a boolean', { ...RAW, encrypt: 'yes' }, /monitoring\[1\]\.encrypt: .*expected boolean/],
  ['unknown key (a typo)', { ...RAW, intervalMs: 5 }, /monitoring\[1\]\.intervalMs: is not a known setting/],
  // Contract 3: "an encrypted KPI is kpi:TABLE and is raw only": the host cannot process or compare sealed values.
  ['encrypted KPI processed', { ...MEDIAN, metric: 'kpi:secret' }, /monitoring\[1\]\.format: /],
  ['encrypted KPI with a predicate', { ...RAW, metric: 'kpi:secret', when: { op: '>', value: 1 } }, /monitoring\[1\]\.when: /],
]

for (const [what, spec, message] of BAD_SPECIFIERS) {
  t.test(`refused: ${what}`, async (t) => {
    const err = refusal(descriptor([RAW, spec]))
    t.equal(err.code, 'DESCRIPTOR_INVALID')
    t.match(err.message, message)
    t.ok(err.message.startsWith('web-1.json: '), 'names the source')
  })
}

const BAD_DESCRIPTORS: Array<[what: string, json: unknown, message: RegExp]> = [
  ['not an object', 'web-1', /\(top level\): /],
  ['id missing', { ...descriptor([RAW]), id: undefined }, /: id: /],
  ['id empty', { ...descriptor([RAW]), id: '' }, /: id: /],
  ['primarySite missing', { ...descriptor([RAW]), primarySite: undefined }, /: primarySite: /],
  ['primarySite.id missing', descriptor([RAW], { primarySite: { publicKey: KEY } }), /: primarySite\.id: /],
  ['primarySite.publicKey not a key', descriptor([RAW], { primarySite: { id: 's', publicKey: 'abc' } }), /: primarySite\.publicKey: must be a base64 32-byte key/],
  ['monitoring not an array', descriptor([RAW], { monitoring: RAW }), /: monitoring: .*expected array/],
]

for (const [what, json, message] of BAD_DESCRIPTORS) {
  t.test(`refused: ${what}`, async (t) => {
    const err = refusal(json)
    t.equal(err.code, 'DESCRIPTOR_INVALID')
    t.match(err.message, message)
  })
}

t.test('a valid descriptor: the example of Contract 3, defaults, other parts pass through', async (t) => {
  const json = descriptor([
    { ...MEDIAN, when: { op: '>', value: 1000 }, encrypt: false },
    RAW,
    { ...RAW, metric: 'kpi:secret' },
    { ...RAW, metric: 'cpu.time', monitoringIntervalMs: 1000, deliveryIntervalMs: 60000, format: 'processed', function: 'max' },
    { ...RAW, metric: 'kpi:users.current_users', encrypt: true, deliveryIntervalMs: 2 ** 31 - 1 },
  ], { placement: { cpus: 2 } })
  const parsed: VmDescriptor = parseDescriptor(json, 'web-1.json')
  t.equal(parsed.monitoring.length, 5)
  t.equal(parsed.monitoring[1].encrypt, false, 'encrypt defaults to false')
  t.equal(parsed.monitoring[4].encrypt, true)
  t.strictSame(parsed.monitoring[0].when, { op: '>', value: 1000 })
  t.strictSame((parsed as Record<string, unknown>).placement, { cpus: 2 }, 'unknown top-level parts are kept (they travel with the VM)')
  t.strictSame(parseDescriptor(descriptor([]), 'x').monitoring, [])
  const { monitoring: _, ...withoutMonitoring } = descriptor([])
  t.strictSame(parseDescriptor(withoutMonitoring, 'x').monitoring, [], 'no monitoring section: none')
})

t.test('kpiTarget: kpi:TABLE.COLUMN, kpi:TABLE is an encrypted KPI, names holding a dot are quoted', async (t) => {
  t.strictSame(kpiTarget('kpi:users.current_users'), { table: 'users', column: 'current_users' })
  t.strictSame(kpiTarget('kpi:"app.v2".latency'), { table: 'app.v2', column: 'latency' })
  t.strictSame(kpiTarget('kpi:secret'), { table: 'secret' })
  t.strictSame(kpiTarget('kpi:"revenue.v2"'), { table: 'revenue.v2' }, 'an encrypted KPI whose name holds a dot')
  t.equal(kpiTarget('cpu.time'), undefined, 'a hypervisor data point')
})

t.test('an encrypted KPI named revenue.v2 is kpi:"revenue.v2": raw only, like any encrypted KPI', async (t) => {
  const parsed = parseDescriptor(descriptor([{ ...RAW, metric: 'kpi:"revenue.v2"' }]), 'web-1.json')
  t.equal(parsed.monitoring[0].metric, 'kpi:"revenue.v2"', 'the metric text is kept as written (deliveries carry it)')
  t.match(refusal(descriptor([RAW, { ...MEDIAN, metric: 'kpi:"revenue.v2"' }])).message, /monitoring\[1\]\.format: an encrypted KPI/)
})
