import t from 'tap'
import { createServer } from 'node:http'
import { decodeFrame, encodeFrame, type RowFrame } from '../../../protocol/kpi-feed/frames'
import { stringifyExact } from '../../../protocol/exact-json'
import { AgentSetup } from '../support/agent-setup'
import { waitFor } from '../../support/wait'

// A KPI INTEGER is 64-bit (guestfs stores it as SQLite INTEGER); a JSON number as JavaScript reads
// it is exact only up to ±2^53. Values beyond that must reach the agent's deliveries digit for digit.

const EDGES = ['9007199254740993', '-9223372036854775808', '9223372036854775807']

t.test('wire: integers beyond ±2^53 go as decimal strings listed in row.big and decode into exact bigints', async (t) => {
  const row: RowFrame = { v: 1, t: 'row', seq: '7', kpi: 'k', ts: 1, cols: ['a', 'b', 'c', 'd', 'e'], vals: [BigInt(EDGES[0]), 42n, 'text', null, BigInt(EDGES[1])] }
  const line = encodeFrame(row)
  t.strictSame(JSON.parse(line), { ...row, vals: [EDGES[0], 42, 'text', null, EDGES[1]], big: [0, 4] }, 'safe integers stay JSON numbers')
  t.strictSame(decodeFrame(line.trim()), { ...row, vals: [BigInt(EDGES[0]), 42, 'text', null, BigInt(EDGES[1])] })
  t.notOk(encodeFrame({ ...row, vals: [1n, 2.5] }).includes('"big"'), 'no big field when every integer fits')

  const bad = (big: unknown, vals: unknown[] = ['12345678901234567890', 'x']) =>
    JSON.stringify({ v: 1, t: 'row', seq: '1', kpi: 'k', ts: 1, cols: vals.map((_, i) => `c${i}`), vals, big })
  for (const [what, line] of [
    ['not an array', bad(0)], ['out of range', bad([2])], ['not increasing', bad([0, 0])],
    ['text that is no integer', bad([1])], ['beyond 64 bits', bad([0])], ['a number, not a string', bad([0], [1, 'x'])],
  ] as const) t.throws(() => decodeFrame(line), { code: 'FEED_BAD_FRAME', message: /row\.(big|vals)/ }, what)
})

t.test('stringifyExact: JSON.stringify with bigints as exact integer literals', async (t) => {
  const value = { a: [1n, 2, undefined, 'x"y'], b: undefined, c: { d: BigInt(EDGES[2]), e: null }, f: new Date(0) }
  t.equal(stringifyExact(value), `{"a":[1,2,null,"x\\"y"],"c":{"d":${EDGES[2]},"e":null},"f":"1970-01-01T00:00:00.000Z"}`)
  t.equal(stringifyExact({ plain: [1, 'a'] }), JSON.stringify({ plain: [1, 'a'] }))
})

t.test('end to end: a 64-bit value written in the guest is exact in the agent\'s deliveries (at once and windowed)', async (t) => {
  // The delivery bodies as text: JSON.parse here would round them again.
  const bodies: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
      bodies.push(body)
      res.writeHead(200).end('ok\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ingest`

  const setup = await AgentSetup.create(t, {
    monitoring: [
      { metric: 'kpi:big.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
      { metric: 'kpi:big.w', monitoringIntervalMs: 0, deliveryIntervalMs: 300, format: 'raw' },
    ],
    consumers: [url],
  })
  await setup.startAgent()
  for (const value of [...EDGES, '42']) t.equal(await setup.write('big', `v,w\n${value},${value}\n`), 'ok', `wrote ${value}`)

  const values = (metric: string) => bodies.flatMap((body) => {
    // Each body is one delivery or an array. Numbers are quoted before parsing: JSON.parse would round them.
    const parsed = JSON.parse(body.replace(/"value":(-?[0-9][0-9.eE+-]*)/g, '"value":"$1"')) as unknown
    const deliveries = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{ metric: string, samples: Array<{ value: string }> }>
    return deliveries.filter((d) => d.metric === metric).flatMap((d) => d.samples.map((s) => s.value))
  })
  await waitFor('the at-once deliveries', () => values('kpi:big.v').length >= 4, 15_000)
  t.strictSame(values('kpi:big.v'), [...EDGES, '42'], 'delivered at once: every digit')
  await waitFor('the windowed delivery', () => values('kpi:big.w').length >= 4, 15_000)
  t.strictSame(values('kpi:big.w'), [...EDGES, '42'], 'delivered from a window kept in the agent\'s store: every digit')
})
