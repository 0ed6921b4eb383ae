import t from 'tap'
import { sourceStreamAuthorizer } from '../../../protocol/proxy/stream-authorizer'
import type { TokenRecord } from '../../../protocol/proxy/token-record'

// Which parked stream connections a Source proxy accepts: its own open source token, from the
// bound destination certificate, for a live migration's channels.

const DEST = 'AA:BB'
const record = (over: Partial<TokenRecord>): TokenRecord => ({
  token: 'tok-vm1', role: 'source', proxy: 0, vmId: 'vm1', hostId: 'h1', boundTo: DEST, descriptor: null, manifest: null,
  state: 'open', expiresAt: 2_000, locationVersion: null, requester: 'site-a', ...over,
})

t.test('the right token, certificate and channel are parked under the token', async (t) => {
  const tokens = new Map([['tok-vm1', record({})]])
  const authorize = sourceStreamAuthorizer({ token: (k) => tokens.get(k) }, 0, () => 1_000)
  t.equal(authorize('tok-vm1', 'migration', DEST), 'tok-vm1')
  t.equal(authorize('tok-vm1', 'nbd', DEST), 'tok-vm1')
})

t.test('refusals, each with its code', async (t) => {
  const tokens = new Map([
    ['tok-vm1', record({})],
    ['tok-dest', record({ token: 'tok-dest', role: 'destination' })],
    ['tok-other-proxy', record({ token: 'tok-other-proxy', proxy: 1 })],
    ['tok-spent', record({ token: 'tok-spent', state: 'spent' })],
    ['tok-received', record({ token: 'tok-received', state: 'received' })],
  ])
  const authorize = sourceStreamAuthorizer({ token: (k) => tokens.get(k) }, 0, () => 1_000)
  t.throws(() => authorize('tok-unknown', 'migration', DEST), { code: 'token-unknown' }, 'a token this site never issued (another VM\'s at another site)')
  t.throws(() => authorize(undefined, 'migration', DEST), { code: 'token-unknown' }, 'no token')
  t.throws(() => authorize('tok-dest', 'migration', DEST), { code: 'token-unknown' }, 'a destination token')
  t.throws(() => authorize('tok-other-proxy', 'migration', DEST), { code: 'token-unknown' }, 'another proxy\'s token')
  t.throws(() => authorize('tok-vm1', 'migration', 'CC:DD'), { code: 'token-foreign' }, 'another certificate')
  t.throws(() => authorize('tok-vm1', 'migration', undefined), { code: 'token-foreign' }, 'no certificate')
  t.throws(() => authorize('tok-spent', 'migration', DEST), { code: 'token-spent' })
  t.throws(() => authorize('tok-received', 'nbd', DEST), { code: 'token-spent' }, 'a transfer no longer open')
  t.throws(() => authorize('tok-vm1', 'files', DEST), { code: 'unknown-operation' }, 'a channel that is not a live migration\'s')
  const late = sourceStreamAuthorizer({ token: (k) => tokens.get(k) }, 0, () => 3_000)
  t.throws(() => late('tok-vm1', 'migration', DEST), { code: 'token-expired' })
})
