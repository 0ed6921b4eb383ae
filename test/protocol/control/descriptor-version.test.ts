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
  const next = applyChange(current, readChange({ version: 4, patch: { monitoring: [{ metric: 'kpi:users.n' }], resources: { vcpus: 2 } } }))
  t.same(next, { ...current, version: 4, monitoring: [{ metric: 'kpi:users.n' }], resources: { memoryMiB: 512, vcpus: 2 } })
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
  refused({ version: 4, patch: { monitoring: [{ monitoringIntervalMs: 5 }] } }, /descriptor\.monitoring\.0\.metric/)
  refused({ version: 4, patch: { resources: { memoryMiB: -1 } } }, /descriptor\.resources\.memoryMiB/)
})
