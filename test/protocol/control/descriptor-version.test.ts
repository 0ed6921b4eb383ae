import t from 'tap'
import { applyChange, descriptorVersion, readChange } from '../../../protocol/control/descriptor-version'
import { ProtocolError } from '../../../protocol/errors'

// What a descriptor update makes of the descriptor in force, and what it refuses (naming the field).

const current = { id: 'web-1', version: 3, primarySite: { id: 'site-a', publicKey: 'k' }, resources: { memoryMiB: 512, vcpus: 1 }, monitoring: [{ metric: 'cpu.time' }], extra: 'kept' }

t.test('versions: absent or malformed is 0', async (t) => {
  t.equal(descriptorVersion(current), 3)
  t.equal(descriptorVersion({}), 0)
  t.equal(descriptorVersion({ version: -2 }), 0)
  t.equal(descriptorVersion({ version: '4' }), 0)
  t.equal(descriptorVersion(null), 0)
})

t.test('a patch replaces the specifiers, changes only the resources it names, keeps the rest', async (t) => {
  const users = { metric: 'kpi:users.n', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
  const next = applyChange(current, readChange({ version: 4, patch: { monitoring: [users], resources: { vcpus: 2 } } }))
  t.same(next, { ...current, version: 4, monitoring: [users], resources: { memoryMiB: 512, vcpus: 2 } })
  t.same(applyChange(current, readChange({ version: 4, patch: { resources: { vcpus: 2 } } })).monitoring, current.monitoring, 'a patch without specifiers keeps those in force')
})

t.test('a whole descriptor keeps id and primary site when it leaves them out, and cannot change them', async (t) => {
  t.same(applyChange(current, readChange({ version: 5, descriptor: { monitoring: [] } })), { monitoring: [], id: 'web-1', primarySite: current.primarySite, version: 5 })
  t.throws(() => applyChange(current, readChange({ version: 5, descriptor: { id: 'web-2' } })), { code: 'bad-request', message: /descriptor\.id cannot be changed/ })
  t.throws(() => applyChange(current, readChange({ version: 5, descriptor: { primarySite: { id: 'site-x', publicKey: 'k' } } })), { message: /descriptor\.primarySite/ })
})

t.test('malformed updates are refused, naming the field', async (t) => {
  const refused = (body: Record<string, unknown>, message: RegExp): void => {
    try {
      applyChange(current, readChange(body))
      t.fail(`${JSON.stringify(body)} was taken`)
    } catch (err) {
      t.ok(err instanceof ProtocolError && err.code === 'bad-request' && message.test(err.message), `${JSON.stringify(body)}: ${(err as Error).message}`)
    }
  }
  refused({ patch: {} }, /version must be an integer/)
  refused({ version: 0, patch: {} }, /version must be an integer/)
  refused({ version: 4 }, /either descriptor or patch/)
  refused({ version: 4, patch: {}, descriptor: {} }, /either descriptor or patch/)
  refused({ version: 4, patch: { id: 'x' } }, /patch/)
  refused({ version: 4, patch: { monitoring: [{ monitoringIntervalMs: 5 }] } }, /^patch\.monitoring\[0\]\.metric: /)
  refused({ version: 4, patch: { resources: { memoryMiB: -1 } } }, /descriptor\.resources\.memoryMiB/)
})

t.test('specifiers the host agent would refuse are refused by every site, naming the field, before any version moves', async (t) => {
  const spec = { metric: 'kpi:users.n', monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed', function: 'median' }
  const cases: Array<[unknown, RegExp]> = [
    [{ ...spec, format: 'bogus' }, /^patch\.monitoring\[1\]\.format: /],
    [{ ...spec, function: undefined }, /^patch\.monitoring\[1\]\.function: processed format needs a function/],
    [{ ...spec, metric: 'kpi:app.v2.latency' }, /^patch\.monitoring\[1\]\.metric: /],
    [{ ...spec, metric: 'kpi:revenue', format: 'processed' }, /^patch\.monitoring\[1\]\.format: an encrypted KPI/],
    [{ ...spec, metric: 'cpu.bogus' }, /^patch\.monitoring\[1\]\.metric: unknown hypervisor data point/],
    [{ ...spec, when: { op: '=>', value: 1 } }, /^patch\.monitoring\[1\]\.when\.op: /],
    [{ ...spec, deliveryIntervalMs: 2 ** 31 }, /^patch\.monitoring\[1\]\.deliveryIntervalMs: must be at most/],
  ]
  for (const [bad, message] of cases) {
    t.throws(() => readChange({ version: 4, patch: { monitoring: [spec, bad] } }), { code: 'bad-request', message }, String(message))
  }
  t.throws(() => readChange({ version: 4, descriptor: { monitoring: [{ ...spec, extra: 1 }] } }), { code: 'bad-request', message: /^descriptor\.monitoring\[0\]\.extra: / }, 'a whole descriptor too')
  t.equal(readChange({ version: 4, patch: { monitoring: [spec] } }).version, 4, 'a valid one is taken')
})
