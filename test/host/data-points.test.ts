import t from 'tap'
import { DATA_POINT_NAMES, dataPointGroups, domainDataPoints, isDataPointName } from '../../host/data-points'
import { runningStats } from './support/sample-stats'

t.test('data points in base units, summed over devices and per device', async t => {
  const stats = runningStats('a', 'u', 12.5)
  stats.blocks.push({ ...stats.blocks[0], name: 'vdb', wrBytes: 100, wrTimesNs: 1e9 })
  const p = domainDataPoints(stats)
  t.equal(p.get('cpu.time'), 12.5, 'seconds')
  t.equal(p.get('cpu.user'), 10)
  t.equal(p.get('balloon.rss'), 250000 * 1024, 'bytes')
  t.equal(p.get('balloon.current'), 128 * 1024 * 1024)
  t.equal(p.get('balloon.minor_fault'), 100, 'a count stays a count')
  t.equal(p.get('net.rx_bytes'), 1000)
  t.equal(p.get('net.vnet0.tx_drop'), 1)
  t.equal(p.get('block.wr_bytes'), 8192 + 100, 'summed over vda and vdb')
  t.equal(p.get('block.vdb.wr_bytes'), 100)
  t.equal(p.get('block.wr_times'), 1.004, 'seconds, summed')
  t.equal(p.get('vcpu.0.delay'), 2)
  t.equal(p.get('state.state'), 1)
  for (const name of p.keys()) t.ok(isDataPointName(name), `${name} is a known data point name`)
})

t.test('seconds without binary rounding noise, sums converted once', async t => {
  const stats = runningStats('a', 'u')
  stats.cpu = { timeNs: 967795000 }
  stats.blocks.push({ ...stats.blocks[0], name: 'vdb', rdTimesNs: 100000000 })
  stats.blocks[0].rdTimesNs = 200000000
  const p = domainDataPoints(stats)
  t.equal(`${p.get('cpu.time')}`, '0.967795')
  t.equal(`${p.get('block.rd_times')}`, '0.3', 'not 0.1 + 0.2 = 0.30000000000000004')
})

t.test('absent groups give absent data points', async t => {
  const p = domainDataPoints({ name: 'off', uuid: 'u', state: { code: 5, reason: 0 }, interfaces: [], blocks: [] })
  t.same([...p.keys()].sort(), ['state.reason', 'state.state'])
})

t.test('names a specifier may use', async t => {
  for (const n of ['cpu.time', 'balloon.rss', 'net.rx_bytes', 'block.wr_bytes', 'net.vnet0.rx_bytes', 'block.vda.rd_times', 'vcpu.0.time']) t.ok(isDataPointName(n), n)
  for (const n of ['cpu', 'cpu.time.x', 'net.vnet0.nope', 'vcpu.x.time', 'kpi:users.x', 'balloon.rss_bytes']) t.notOk(isDataPointName(n), n)
  t.ok(DATA_POINT_NAMES.includes('block.fl_times'))
})

t.test('the statistics groups a set of data points needs', async t => {
  t.same(dataPointGroups(['cpu.time']), ['cpu'])
  t.same(dataPointGroups(['cpu.time', 'cpu.user', 'net.vnet0.rx_bytes', 'block.wr_bytes', 'state.state']).sort(), ['block', 'cpu', 'interface', 'state'])
  t.same(dataPointGroups(['balloon.rss', 'vcpu.0.time']).sort(), ['balloon', 'vcpu'])
  t.same(dataPointGroups([]), [])
  for (const name of DATA_POINT_NAMES) t.equal(dataPointGroups([name]).length, 1, `${name} belongs to a group`)
})

t.test('each data point comes from its group alone', async t => {
  const full = domainDataPoints(runningStats('a', 'u'))
  for (const [name, value] of full) {
    const stats = runningStats('a', 'u')
    const groups = dataPointGroups([name])
    if (!groups.includes('cpu')) delete stats.cpu
    if (!groups.includes('balloon')) delete stats.balloon
    if (!groups.includes('vcpu')) delete stats.vcpu
    if (!groups.includes('interface')) stats.interfaces = []
    if (!groups.includes('block')) stats.blocks = []
    t.equal(domainDataPoints(stats).get(name), value, name)
  }
})
