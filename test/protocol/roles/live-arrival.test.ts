import t, { type Test } from 'tap'
import { rm } from 'node:fs/promises'
import type { LiveDestination } from '../../../host/libvirt/live-destination'
import type { VmHost } from '../../../host/vm-folder/vm-host'
import { ProtocolError } from '../../../protocol/errors'
import { StreamPark } from '../../../protocol/proxy/stream-relay'
import { PERFORMED_CHANNEL, signalFrame } from '../../../protocol/proxy/stream-signal'
import type { SourceTicket } from '../../../protocol/proxy/ticket'
import type { TokenState } from '../../../protocol/proxy/token-record'
import { endLiveArrival, joinLiveFinish, prepareLiveArrival, type LiveArrivalDeps } from '../../../protocol/roles/live-arrival'
import { LiveSessions } from '../../../protocol/roles/live-sessions'
import { TokenLocks } from '../../../protocol/roles/token-locks'
import { identities, sourceProxy, waitFor, waitUntil } from '../../host/libvirt/support/live-pair'

// The Destination's half of the in-band "Perform done": the Source's proxy answers the parked
// `performed` connection with Perform's cookie, and the Destination Finishes at once, before any
// live-finish from the Controller; the Controller's call then joins that Finish. An abort and the
// in-band Finish are serialized on the token: whichever comes first wins and the other sees it.
// Real TLS and the real stream park; libvirt's Finish is a stand-in that records its calls and
// returns when the test lets it (the libvirt side is test/e2e/live-faults.test.ts).

const SOURCE_TOKEN = 'source-token-of-the-transfer'
const TOKEN = 'destination-token'
const VM = 'vm-inband'
const COOKIE = Buffer.from('<qemu-migration><name>vm-inband</name></qemu-migration>').toString('base64')

interface Gate { promise: Promise<void>, open: () => void }
function gate (): Gate {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** libvirt's Finish as the test sees it: each call (cookie, cancelled), held until `finishGate` opens. */
class FakeDestination {
  readonly calls: Array<{ cookie: string, cancelled: boolean }> = []
  readonly finishGate = gate()
  readonly cookie = Buffer.from('prepare-cookie')
  socketPath (): string { return '/nonexistent/fedvm-test.sock' }
  async finish (performCookie: Buffer, cancelled: boolean): Promise<{ uuid: string, cookie: Buffer } | undefined> {
    this.calls.push({ cookie: performCookie.toString('base64'), cancelled })
    if (cancelled) return undefined
    await this.finishGate.promise
    return { uuid: 'uuid-1', cookie: Buffer.from('finish-cookie') }
  }

  async status (): Promise<{ uuid: string, disks: [], job: 'completed' }> { return { uuid: 'uuid-1', disks: [], job: 'completed' } }
  async close (): Promise<void> {}
}

async function setup (t: Test): Promise<{ deps: LiveArrivalDeps, park: StreamPark, destination: FakeDestination, state: () => TokenState, lockCalls: () => number, events: Array<Record<string, unknown>> }> {
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const park = new StreamPark((presented, _channel, fingerprint) => {
    if (presented !== SOURCE_TOKEN || fingerprint !== ids.destination.fingerprint) throw new ProtocolError('token-foreign', 'not this migration')
    return SOURCE_TOKEN
  })
  const proxy = await sourceProxy(ids.source, park)
  t.teardown(() => { park.close(); proxy.server.close() })
  let state: TokenState = 'open'
  let locked = 0
  const locks = new TokenLocks()
  const events: Array<Record<string, unknown>> = []
  const deps: LiveArrivalDeps = {
    live: new LiveSessions(),
    tokens: {
      token: (token) => token === TOKEN ? { token, state } as ReturnType<LiveArrivalDeps['tokens']['token']> : undefined,
      setTokenState: (_token, next) => { state = next },
    },
    settling: { run: async (token, action) => { locked++; return await locks.run(token, action) } },
    log: (e) => events.push(e),
  }
  const destination = new FakeDestination()
  const host = { prepareLiveArrival: async () => destination as unknown as LiveDestination } as unknown as VmHost
  const ticket = { kind: 'fedvm-source-ticket', vmId: VM, uri: proxy.url, fingerprint: ids.source.fingerprint, token: SOURCE_TOKEN, live: { xml: '<domain/>', cookie: '', disks: [], memoryBytes: 0 } } as unknown as SourceTicket
  await prepareLiveArrival(deps, host, TOKEN, VM, ticket, ids.destination)
  t.teardown(async () => await endLiveArrival(deps, TOKEN))
  return { deps, park, destination, state: () => state, lockCalls: () => locked, events }
}

/** The Source's side once Perform returned: answers the Destination's parked `performed` connection (parked shortly after Prepare). */
async function signalPerformed (park: StreamPark): Promise<void> {
  await waitForAsync(async () => await park.signal(SOURCE_TOKEN, PERFORMED_CHANNEL, signalFrame(COOKIE)))
}

async function waitForAsync (check: () => Promise<boolean>): Promise<void> {
  if (!await waitUntil(check, 10_000)) throw new Error('not within 10000 ms')
}

t.test('the Destination Finishes on the in-band signal, before the Controller\'s live-finish; live-finish joins it', async (t) => {
  const { deps, park, destination, state } = await setup(t)
  destination.finishGate.open()
  await signalPerformed(park)
  await waitFor(() => state() === 'received', 10_000)
  t.same(destination.calls, [{ cookie: COOKIE, cancelled: false }], 'Finish ran with Perform\'s cookie as the Source sent it, no live-finish having come')
  const joined = await joinLiveFinish(deps, TOKEN, VM, COOKIE, 'controller')
  t.same(joined, { status: { uuid: 'uuid-1', disks: [], job: 'completed' }, cookie: Buffer.from('finish-cookie').toString('base64') }, 'live-finish answers the in-band Finish\'s outcome')
  t.equal(destination.calls.length, 1, 'Finish ran once')
})

t.test('without the signal, the Controller\'s live-finish runs Finish itself', async (t) => {
  const { deps, destination, state } = await setup(t)
  destination.finishGate.open()
  const finished = await joinLiveFinish(deps, TOKEN, VM, COOKIE, 'controller')
  t.equal(finished.status.uuid, 'uuid-1')
  t.equal(state(), 'received', 'the VM runs here, pending the decision')
  t.same(destination.calls, [{ cookie: COOKIE, cancelled: false }])
})

/** What the Destination's transfer-abort does under the token's lock (destination.ts), held until `go` opens. */
async function abortWhen (deps: LiveArrivalDeps, go: Promise<void>, seen: { state?: TokenState }): Promise<void> {
  await deps.settling.run(TOKEN, async () => {
    await go
    seen.state = deps.tokens.token(TOKEN)?.state
    deps.tokens.setTokenState(TOKEN, 'cancelled')
    await endLiveArrival(deps, TOKEN)
  })
}

t.test('an abort that comes first wins: the in-band Finish that follows does not run the VM here', async (t) => {
  const { deps, park, destination, lockCalls, events } = await setup(t)
  destination.finishGate.open()
  const go = gate()
  const seen: { state?: TokenState } = {}
  const aborted = abortWhen(deps, go.promise, seen)
  await signalPerformed(park)
  // The signal's Finish waits for the token's lock, which the abort holds.
  await waitFor(() => lockCalls() === 2, 10_000)
  go.open()
  await aborted
  await waitFor(() => events.some((e) => e.event === 'live-finish-failed' && e.by === 'source'), 10_000)
  t.equal(seen.state, 'open', 'the abort found the arrival not Finished')
  t.same(destination.calls, [{ cookie: '', cancelled: true }], 'only the cancelling Finish ran: the guest never resumed here, it runs at the Source')
  await t.rejects(joinLiveFinish(deps, TOKEN, VM, COOKIE, 'controller'), { code: 'transfer-cancelled' }, 'a later live-finish is refused')
})

t.test('an in-band Finish that comes first wins: the abort that follows finds the VM Finished here and drops it', async (t) => {
  const { deps, park, destination, lockCalls, state } = await setup(t)
  await signalPerformed(park)
  await waitFor(() => destination.calls.length === 1, 10_000)
  const seen: { state?: TokenState } = {}
  const aborted = abortWhen(deps, Promise.resolve(), seen)
  await waitFor(() => lockCalls() === 2, 10_000)
  t.equal(seen.state, undefined, 'the abort waits while Finish runs')
  destination.finishGate.open()
  await aborted
  t.equal(seen.state, 'received', 'the abort saw the VM Finished here (destination.ts then abandons it before the Source resumes)')
  t.equal(state(), 'cancelled')
  t.same(destination.calls, [{ cookie: COOKIE, cancelled: false }], 'the finished session is not cancelled again')
  await t.rejects(joinLiveFinish(deps, TOKEN, VM, COOKIE, 'controller'), { code: 'transfer-cancelled' }, 'a later live-finish is refused')
})

t.test('a signal cut short starts no Finish', async (t) => {
  const { deps, park, destination, events } = await setup(t)
  await waitForAsync(async () => await park.signal(SOURCE_TOKEN, PERFORMED_CHANNEL, Buffer.from(COOKIE.slice(0, 10))))
  await waitFor(() => events.some((e) => e.event === 'live-performed-signal-failed'), 10_000)
  t.same(destination.calls, [], 'nothing resumed here')
  destination.finishGate.open()
  t.equal((await joinLiveFinish(deps, TOKEN, VM, COOKIE, 'controller')).status.uuid, 'uuid-1', 'the Controller\'s live-finish still Finishes')
})
