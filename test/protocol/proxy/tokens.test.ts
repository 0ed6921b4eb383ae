import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TokenRecord } from '../../../protocol/proxy/token-record'
import { cancellableSourceToken, checkHolder, checkNotExpired, usableToken, verifiableSourceToken } from '../../../protocol/proxy/tokens'
import { SiteState } from '../../../protocol/site/site-state'

// Every token check on a real site state, with the clock given: an expiry is checked at an instant
// chosen by the test (1 ms before and after it), never by waiting for it.

const T0 = 1_700_000_000_000

function token (over: Partial<TokenRecord>): TokenRecord {
  return {
    token: 'tok', role: 'source', proxy: 0, vmId: 'vm1', hostId: 'h1', boundTo: 'AB'.repeat(32), descriptor: null,
    manifest: null, state: 'open', expiresAt: T0 + 60_000, locationVersion: 'v1', requester: 'site-a', ...over,
  }
}

async function stateWith (t: { teardown (fn: () => unknown): void }, records: TokenRecord[]): Promise<SiteState> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-tokens-'))
  const state = new SiteState(dir)
  t.teardown(async () => { state.close(); await rm(dir, { recursive: true, force: true }) })
  for (const record of records) state.putToken(record)
  return state
}

t.test('a token is usable until its expiry, for its role and proxy only', async (t) => {
  const state = await stateWith(t, [token({ token: 'src' }), token({ token: 'dst', role: 'destination', proxy: 1 })])
  t.equal(usableToken(state, 'src', 'source', 0, T0 + 60_000).token, 'src', 'at its expiry instant')
  t.throws(() => usableToken(state, 'src', 'source', 0, T0 + 60_001), { code: 'token-expired' }, '1 ms after')
  t.throws(() => usableToken(state, 'src', 'destination', undefined, T0), { code: 'token-unknown' }, 'another role')
  t.throws(() => usableToken(state, 'dst', 'destination', 0, T0), { code: 'token-unknown' }, 'another proxy')
  t.equal(usableToken(state, 'dst', 'destination', undefined, T0).token, 'dst', 'any proxy when none is named')
  t.throws(() => usableToken(state, undefined, 'source', 0, T0), { code: 'token-unknown' }, 'no token')
  t.throws(() => usableToken(state, 'x'.repeat(101), 'source', 0, T0), { code: 'token-unknown' }, 'an overlong token is not looked up')
})

t.test('the most specific refusal wins: cancelled, spent, expired', async (t) => {
  const state = await stateWith(t, [
    token({ token: 'c', state: 'cancelled', expiresAt: T0 - 1 }),
    token({ token: 's', state: 'spent', expiresAt: T0 - 1 }),
    token({ token: 'e', state: 'expired', expiresAt: T0 + 60_000 }),
    token({ token: 'r', state: 'received', expiresAt: T0 - 1 }),
  ])
  t.throws(() => usableToken(state, 'c', 'source', 0, T0), { code: 'transfer-cancelled' })
  t.throws(() => usableToken(state, 's', 'source', 0, T0), { code: 'token-spent' })
  t.throws(() => usableToken(state, 'e', 'source', 0, T0), { code: 'token-expired' }, 'swept as expired, whatever its time')
  t.equal(usableToken(state, 'r', 'source', 0, T0).token, 'r', 'a received transfer still answers after its expiry')
})

t.test('the control channel: holder, verification and cancel', async (t) => {
  const state = await stateWith(t, [token({ token: 'open' }), token({ token: 'spent', state: 'spent' }), token({ token: 'gone', state: 'expired' }), token({ token: 'dst', role: 'destination' })])
  t.throws(() => checkHolder(token({}), 'site-x', 'vm1', 'offer'), { code: 'token-foreign', message: /offer/ })
  t.throws(() => checkHolder(token({}), 'site-a', 'vm2', 'transfer'), { code: 'token-foreign', message: /transfer/ })
  t.doesNotThrow(() => checkHolder(token({}), 'site-a', 'vm1', 'transfer'))
  t.equal(verifiableSourceToken(state, 'spent', 'site-a', 'vm1').state, 'spent', 'a verified transfer answers again')
  t.throws(() => verifiableSourceToken(state, 'gone', 'site-a', 'vm1'), { code: 'token-expired' })
  t.throws(() => verifiableSourceToken(state, 'dst', 'site-a', 'vm1'), { code: 'token-unknown' }, 'a destination token is no source token')
  t.throws(() => verifiableSourceToken(state, 'open', 'site-x', 'vm1'), { code: 'token-foreign' })
  t.doesNotThrow(() => checkNotExpired(token({}), T0 + 60_000))
  t.throws(() => checkNotExpired(token({}), T0 + 60_001), { code: 'token-expired' })
  t.equal(cancellableSourceToken(state, 'open', 'site-a', 'vm1').token, 'open')
  t.throws(() => cancellableSourceToken(state, 'spent', 'site-a', 'vm1'), { code: 'token-spent' })
})
