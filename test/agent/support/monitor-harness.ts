import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mock } from 'node:test'
import { generateBoxKeyPair, type BoxKeyPair } from '../../../protocol/crypto/sealed-box'
import type { RowFrame, FeedValue } from '../../../protocol/kpi-feed/frames'
import { parseDescriptor, type VmDescriptor } from '../../../agent/descriptor/vm-descriptor'
import type { AgentDelivery as Delivery } from '../../../protocol/relay/delivery'
import { VmMonitor } from '../../../agent/engine/vm-monitor'
import { AgentStore } from '../../../agent/state/agent-store'
import type { Teardownable } from '../../support/teardownable'

/** The virtual clock's start: any fixed Unix time in ms. */
export const T0 = 1_700_000_000_000

let clockUsers = 0

/** Mock setInterval and Date from T0 on, shared by the harnesses of one test and undone at its teardown. */
function useMockClock (t: Teardownable): void {
  if (clockUsers++ === 0) mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 })
  t.teardown(() => {
    if (--clockUsers === 0) mock.timers.reset()
  })
}

/**
 * A VmMonitor over a real AgentStore in a temp dir, fed rows directly (no FUSE, no socket), on
 * node:test's mock timers (setInterval and Date) so delivery windows close exactly when the test
 * ticks. Deliveries are seen twice: as the monitor reports them, and in the durable outbox.
 */
export class MonitorHarness {
  readonly delivered: Delivery[] = []
  /** What the monitor logged. */
  readonly logs: string[] = []
  monitor!: VmMonitor
  store!: AgentStore
  private seq = 0n

  private constructor (readonly dir: string, readonly keys: BoxKeyPair, readonly consumers: string[]) {}

  /** `parent`: where the store's temp dir goes (a tiny filesystem, to run out of space). */
  static async create (t: Teardownable, monitoring: unknown[], options: { consumers?: string[], vm?: string, parent?: string } = {}): Promise<MonitorHarness> {
    const dir = await mkdtemp(join(options.parent ?? tmpdir(), 'fedvm-agent-engine-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    useMockClock(t)
    const harness = new MonitorHarness(dir, await generateBoxKeyPair(), options.consumers ?? ['receiver'])
    harness.open(options.vm ?? 'web-1')
    harness.monitor.configure(harness.descriptor(monitoring))
    t.teardown(() => harness.close())
    return harness
  }

  /** (Re)opens the store and a fresh monitor on the same state directory, like an agent restart. */
  open (vm = 'web-1'): void {
    this.store = new AgentStore(this.dir)
    this.monitor = new VmMonitor(vm, { store: this.store, consumers: () => this.consumers, delivered: (d) => this.delivered.push(d), log: (line) => this.logs.push(line) })
    this.seq = this.store.cursor(vm)
  }

  close (): void {
    this.monitor.stop()
    try {
      this.store.close()
    } catch {
      // already closed by a simulated restart
    }
  }

  descriptor (monitoring: unknown[]): VmDescriptor {
    return parseDescriptor({ id: 'web-1', primarySite: { id: 'site-a', publicKey: Buffer.from(this.keys.publicKey).toString('base64') }, monitoring }, 'test descriptor')
  }

  configure (monitoring: unknown[]): void {
    this.monitor.configure(this.descriptor(monitoring))
  }

  /** One unencrypted row per call, committed now (the virtual clock), as the feed would bring it. */
  row (kpi: string, values: Record<string, FeedValue>): RowFrame {
    this.seq++
    return { v: 1, t: 'row', seq: this.seq.toString(), kpi, ts: Date.now(), cols: Object.keys(values), vals: Object.values(values) }
  }

  sealedRow (kpi: string, sealed: Buffer): RowFrame {
    this.seq++
    return { v: 1, t: 'row', seq: this.seq.toString(), kpi, ts: Date.now(), sealed: sealed.toString('base64') }
  }

  /** Ingests rows the way the agent does: in one transaction that also moves the cursor. */
  ingest (...rows: RowFrame[]): void {
    this.store.transaction(() => {
      this.monitor.ingest(rows)
      this.store.setCursor(this.monitor.vm, BigInt(rows[rows.length - 1].seq))
    })
  }

  /** Shorthand: one row per value of `kpi:users.current_users`, 1 ms apart. */
  users (...values: FeedValue[]): void {
    for (const value of values) {
      this.ingest(this.row('users', { current_users: value }))
      this.tick(1)
    }
  }

  /** Advances the clock 1 ms at a time: node 20's mock moves Date to the end of a tick before it runs the timers due within it. */
  tick (ms: number): void {
    for (let i = 0; i < ms; i++) mock.timers.tick(1)
  }

  /** The deliveries waiting in a consumer's outbox, in order. */
  outbox (consumer = this.consumers[0]): Delivery[] {
    return this.store.due(consumer, Number.MAX_SAFE_INTEGER, 1_000_000).map((d) => JSON.parse(d.body) as Delivery)
  }

  /** Deliveries of one specifier (by metric, format and function) so far. */
  of (metric: string, format: 'raw' | 'processed', fn?: string): Delivery[] {
    return this.delivered.filter((d) => d.metric === metric && d.format === format && d.function === fn)
  }
}
