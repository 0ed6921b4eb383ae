import t, { type Test } from 'tap'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
import { ActiveMigrations } from '../../../protocol/roles/active-migrations'
import { ProgressBoard } from '../../../protocol/roles/migration-progress'
import { handleMigrationProgress } from '../../../protocol/roles/progress-query'
import { siteStatus, type SiteStatus } from '../../../protocol/site/site-status'
import { identities, sourceProxy, waitFor, waitUntil } from '../../host/libvirt/support/live-pair'

// The Destination's half of the in-band "Perform done": the Source's proxy answers the parked
// `performed` connection with Perform's cookie, and the Destination Finishes at once, before any
// live-finish from the Controller; the Controller's call then joins that Finish. An abort and the
// in-band Finish are serialized on the token: whichever comes first wins and the other sees it.
// Real TLS and the real stream park; libvirt's Finish is a stand-in that records its calls and
// returns when the test lets it (the libvirt side is test/e2e/live-faults.test.ts).

const MiB = 1024 * 1024
const SOURCE_TOKEN = 'source-token-of-the-transfer'
const TOKEN = 'destination-token'
const VM = 'vm-inband'
const CONTROLLER = 'site-c'
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
  constructor (private readonly sockets: Record<string, string> = {}) {}
  socketPath (channel: string): string { return this.sockets[channel] ?? '/nonexistent/fedvm-test.sock' }
  async finish (performCookie: Buffer, cancelled: boolean): Promise<{ uuid: string, cookie: Buffer } | undefined> {
    this.calls.push({ cookie: performCookie.toString('base64'), cancelled })
    if (cancelled) return undefined
    await this.finishGate.promise
    return { uuid: 'uuid-1', cookie: Buffer.from('finish-cookie') }
  }

  async status (): Promise<{ uuid: string, disks: [], job: 'completed' }> { return { uuid: 'uuid-1', disks: [], job: 'completed' } }
  async close (): Promise<void> {}
}

interface SetupOptions {
  /** The Destination QEMU's unix socket per channel (default: none there). */
  sockets?: Record<string, string>
  /** The ticket's memory and disks (default: none). */
  expected?: { memoryBytes: number, disks: Array<{ name: string, format: 'raw', bytes: number }> }
}

async function setup (t: Test, options: SetupOptions = {}): Promise<{ deps: LiveArrivalDeps, park: StreamPark, destination: FakeDestination, state: () => TokenState, lockCalls: () => number, events: Array<Record<string, unknown>>, proxyUrl: string, fingerprint: string }> {
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
      token: (token) => token === TOKEN ? { token, state, role: 'destination', vmId: VM, requester: CONTROLLER } as ReturnType<LiveArrivalDeps['tokens']['token']> : undefined,
      setTokenState: (_token, next) => { state = next },
    },
    settling: { run: async (token, action) => { locked++; return await locks.run(token, action) } },
    log: (e) => events.push(e),
  }
  const destination = new FakeDestination(options.sockets)
  const host = { prepareLiveArrival: async () => destination as unknown as LiveDestination } as unknown as VmHost
  const ticket = { kind: 'fedvm-source-ticket', vmId: VM, uri: proxy.url, fingerprint: ids.source.fingerprint, token: SOURCE_TOKEN, live: { xml: '<domain/>', cookie: '', disks: [], memoryBytes: 0, ...options.expected } } as unknown as SourceTicket
  await prepareLiveArrival(deps, host, TOKEN, VM, ticket, ids.destination)
  t.teardown(async () => await endLiveArrival(deps, TOKEN))
  return { deps, park, destination, state: () => state, lockCalls: () => locked, events, proxyUrl: proxy.url, fingerprint: ids.source.fingerprint }
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

/** The Destination QEMU's stand-in: a unix socket per channel that reads everything and counts it. */
async function qemuListening (t: Test, dir: string, channel: string): Promise<{ path: string, received: () => number }> {
  const path = join(dir, `dst-${channel}.sock`)
  let received = 0
  const server = createServer((socket) => socket.on('data', (chunk: Buffer) => { received += chunk.length }))
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { path, received: () => received }
}

/** The Source QEMU's stand-in: connects to the Source's relay socket of `channel`; `send` resolves once the Destination's QEMU has it all. */
async function qemuSending (t: Test, park: StreamPark, dir: string, channel: string, target: { received: () => number }): Promise<(bytes: number) => Promise<void>> {
  const path = join(dir, `src-${channel}.sock`)
  const server = await park.listen(SOURCE_TOKEN, channel, path)
  t.teardown(() => server.close())
  const socket = netConnect(path)
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let sent = 0
  return async (bytes) => {
    socket.write(randomBytes(bytes))
    sent += bytes
    await waitFor(() => target.received() === sent, 10_000)
  }
}

t.test('while the streams come in, site status lists the arrival with the bytes received per channel; the Controller\'s fallback figures come from them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-arrival-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const [memoryQemu, disksQemu] = await Promise.all([qemuListening(t, dir, 'migration'), qemuListening(t, dir, 'nbd')])
  const { deps, park, destination, proxyUrl, fingerprint } = await setup(t, {
    sockets: { migration: memoryQemu.path, nbd: disksQemu.path },
    expected: { memoryBytes: 64 * MiB, disks: [{ name: 'vda', format: 'raw', bytes: 32 * MiB }] },
  })
  const site = { self: 'site-b', state: { locations: () => [], inDoubtTokens: () => [] }, active: new ActiveMigrations(), progress: new ProgressBoard(), live: deps.live } as unknown as Parameters<typeof siteStatus>[0]
  const arrivals = (): SiteStatus['arrivals'] => siteStatus(site).arrivals
  t.match(arrivals(), [{ vmId: VM, phase: 'prepared', receivedBytes: { memory: 0, disks: 0 }, rateBytesPerSecond: 0 }], 'Prepare done, nothing came yet')

  const sendDisks = await qemuSending(t, park, dir, 'nbd', disksQemu)
  await sendDisks(2 * MiB)
  t.match(arrivals(), [{ vmId: VM, phase: 'receiving', receivedBytes: { memory: 0, disks: 2 * MiB } }], 'the disks\' stream counted as it came')
  await sendDisks(3 * MiB)
  const sendMemory = await qemuSending(t, park, dir, 'migration', memoryQemu)
  await sendMemory(MiB)
  const [listed] = arrivals()
  t.same(listed.receivedBytes, { memory: MiB, disks: 5 * MiB }, 'both grow, each channel on its own')
  // The rate counts whole seconds: the one the last bytes came in counts once it is over.
  await waitFor(() => arrivals()[0].rateBytesPerSecond > 0, 5000)
  t.pass(`a rate once a MiB came (${arrivals()[0].rateBytesPerSecond} B/s)`)
  const json = JSON.stringify(siteStatus(site))
  for (const [what, secret] of [['the Source proxy\'s address', new URL(proxyUrl).host], ['its fingerprint', fingerprint], ['the source token', SOURCE_TOKEN], ['the destination token', TOKEN]] as const) {
    t.notOk(json.includes(secret), `site status does not show ${what}`)
  }

  const answer = await handleMigrationProgress({ self: 'site-b', partners: undefined as never, tokens: deps.tokens, routes: { route: () => undefined }, progress: new ProgressBoard(), live: deps.live }, { sender: CONTROLLER }, { vmId: VM, end: 'destination' }, TOKEN)
  t.match(answer.progress, { path: 'live', phase: 'memory', totalBytes: 96 * MiB, remainingBytes: 90 * MiB, iteration: undefined }, 'the Controller\'s progress query: what came against the ticket\'s amounts, no memory pass')

  // Finish runs (held by the stand-in): the arrival says so until it is over, then it is no longer listed.
  await waitForAsync(async () => await park.signal(SOURCE_TOKEN, PERFORMED_CHANNEL, signalFrame(COOKIE)))
  await waitFor(() => destination.calls.length === 1, 10_000)
  t.match(arrivals(), [{ vmId: VM, phase: 'finishing', receivedBytes: { memory: MiB, disks: 5 * MiB } }], 'Finish running')
  destination.finishGate.open()
  await waitFor(() => deps.live.arriving.size === 0, 10_000)
  t.same(arrivals(), [], 'Finish done: no longer arriving')
})
