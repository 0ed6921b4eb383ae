import type Database from 'better-sqlite3'
import { ProtocolError } from '../errors'
import type { LocationRecord, LocationStore } from '../roles/records'
import { checkDeliveries, MAX_REFUSED_LISTED, refusedBatch, refusedDelivery, type Delivery } from './delivery'
import type { RefusedItem } from '../errors'
import { RelayForwarder, type SendBatch } from './relay-forwarder'
import { RelayOutbox } from './relay-outbox'

/** `from` for deliveries of this site's own hosts (the local ingest, the NATS bus): not a site id. */
export const LOCAL = '(local)'

export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000

/** `from` for a batch one of this site's hosts signed (the ingest checked its key): it may deliver only for VMs on that host. */
export function hostSender (hostId: string): string {
  return `host:${hostId}`
}

export interface RelayOptions {
  siteId: string
  db: Database.Database
  /** Location records: who delegated each VM here (the next hop), and where it went. */
  state: Pick<LocationStore, 'location' | 'formerLocations'>
  /** Where deliveries for this site's own primary VMs are stored, in `db` (primary/primary-store.ts). */
  primary: PrimarySink
  send: SendBatch
  log: (event: Record<string, unknown>) => void
  lingerMs: number
  /** How long a departed VM's former route is still used (and its former target still heard). */
  tombstoneMs: number
  /** At most this much delivery JSON in one signed request (under the partners' maxRequestBytes). */
  maxBatchBytes: number
  /** Also store (in `primary`) what a partner sends for a VM this site delegated to it, as well as passing it on. */
  observe?: boolean
  /** A delivery whose data times are further ahead of this site's clock than this is refused (default 60 s). */
  maxClockSkewMs?: number
  /** Wall time (ms); Date.now unless a test drives it. */
  now?: () => number
  /** How often the outbox is looked at for rows another process queued (`fedvm site dead-letters --requeue`); default 1 s. */
  requeuePollMs?: number
}

const DEFAULT_REQUEUE_POLL_MS = 1000

/** The primary site's store as the relay writes to it: inserts a batch, returns the deliveries new to it. */
export interface PrimarySink {
  insert: (deliveries: Delivery[]) => Delivery[]
}

type Route = { nextHop: string | null } | { refused: ProtocolError }

/**
 * The one entry point for monitoring deliveries, from every ingest (local HTTP, NATS, the signed
 * `monitoring-deliveries` operation). A delivery for VM v goes to the site that delegated v here
 * (its location record's upstream), or into the primary store when this site is v's primary. A
 * batch is validated whole, then stored in one transaction (outbox rows or primary rows) before
 * accept() resolves; forwarders drain the outbox per next hop.
 */
export class MonitoringRelay {
  readonly outbox: RelayOutbox
  private readonly forwarders = new Map<string, RelayForwarder>()
  private readonly listeners: Array<(fresh: Delivery[]) => void> = []
  private readonly store: (primary: Delivery[], forward: Map<string, Delivery[]>, observed: Delivery[]) => Delivery[]
  private closed = false
  private requeueWatch?: NodeJS.Timeout

  constructor (private readonly options: RelayOptions) {
    this.outbox = new RelayOutbox(options.db, options.maxBatchBytes, options.now)
    this.store = options.db.transaction((primary: Delivery[], forward: Map<string, Delivery[]>, observed: Delivery[]) => {
      for (const [hop, list] of forward) this.outbox.enqueue(hop, list)
      return options.primary.insert(observed.length === 0 ? primary : [...primary, ...observed])
    })
  }

  /** Sends what a previous run left queued, and from then on what another process queues. */
  start (): void {
    this.kickAll()
    this.watchRequeues()
  }

  /**
   * Rows another process put into the outbox (the operator's requeue of dead rows, beside the
   * running daemon) are sent without a restart, and the dead ones counted anew: SQLite's
   * data_version changes exactly when another connection committed, so a poll that finds it
   * unchanged costs one pragma and nothing else.
   */
  private watchRequeues (): void {
    const db = this.options.db
    let seen = db.pragma('data_version', { simple: true })
    this.requeueWatch = setInterval(() => {
      try {
        const version = db.pragma('data_version', { simple: true })
        if (version === seen) return
        seen = version
        this.outbox.recountDead()
        this.kickAll()
      } catch (err) {
        this.options.log({ event: 'monitoring-outbox-poll-failed', error: String(err) })
      }
    }, this.options.requeuePollMs ?? DEFAULT_REQUEUE_POLL_MS)
    // Never keeps the process up by itself.
    this.requeueWatch.unref()
  }

  private kickAll (): void {
    for (const hop of this.outbox.nextHops()) this.forwarder(hop).kick()
  }

  /**
   * Validates and durably stores a batch from `from` (a partner site id, or LOCAL). Refuses the
   * whole batch (nothing stored) when a delivery is bad or has data times more than
   * maxClockSkewMs ahead of this site's clock (bad-request: rules never see them), listing every
   * such delivery so the sender can keep the others; or on a VM this site does not know
   * (unknown-vm) or that `from` is not running for it (not-permitted), the batch refused with the
   * first one's code and each such delivery listed with its own.
   */
  async accept (deliveries: readonly unknown[], from: string): Promise<{ accepted: number }> {
    if (this.closed) throw new ProtocolError('internal', 'the site is shutting down', { retryable: true })
    const checked = checkDeliveries(deliveries, 'deliveries')
    const refused = [...checked.refused, ...this.future(checked.valid)].sort((a, b) => a.index - b.index)
    if (refused.length > 0) throw refusedBatch(refused)
    const valid = checked.valid.map((v) => v.delivery)
    const routes = new Map<string, Route>()
    const primary: Delivery[] = []
    const forward = new Map<string, Delivery[]>()
    const unrouted: RefusedItem[] = []
    checked.valid.forEach(({ index: i, delivery: d }) => {
      let route = routes.get(d.vm)
      if (route === undefined) routes.set(d.vm, route = this.route(d.vm, from))
      if ('refused' in route) {
        const { code, retryable, message } = route.refused
        unrouted.push({ index: i, id: d.id, code, retryable, detail: `deliveries[${i}].vm: ${message}` })
      } else if (route.nextHop === null) primary.push(d)
      else {
        const list = forward.get(route.nextHop)
        if (list === undefined) forward.set(route.nextHop, [d])
        else list.push(d)
      }
    })
    // Named by their own code: the sender can tell them from the others of the batch, which were fine.
    if (unrouted.length > 0) throw new ProtocolError(unrouted[0].code, unrouted[0].detail, { refused: unrouted.slice(0, MAX_REFUSED_LISTED) })
    // A partner sends only for VMs this site delegated to it (route checks it): an observing site keeps those.
    const observed = this.options.observe === true && from !== LOCAL ? [...forward.values()].flat() : []
    const fresh = this.store(primary, forward, observed)
    for (const hop of forward.keys()) this.forwarder(hop).kick()
    if (fresh.length > 0) {
      for (const listener of this.listeners) {
        try {
          listener(fresh)
        } catch (err) {
          this.options.log({ event: 'monitoring-listener-failed', error: String(err) })
        }
      }
    }
    return { accepted: valid.length }
  }

  /** Called with the deliveries newly stored in the primary store (repeats are not passed again). */
  onStored (listener: (fresh: Delivery[]) => void): void {
    this.listeners.push(listener)
  }

  /** Deliveries waiting for each next hop. */
  queued (): Record<string, number> {
    return this.outbox.counts()
  }

  /**
   * Deliveries kept apart as dead for each next hop (refused for good), as of the last change this
   * process made or the last poll that saw another's; a hop this run sends to is there at 0.
   */
  deadDeliveries (): Record<string, number> {
    const counts: Record<string, number> = Object.fromEntries([...this.forwarders.keys()].map((hop) => [hop, 0]))
    for (const [hop, n] of this.outbox.deadCounts()) counts[hop] = n
    return counts
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.requeueWatch)
    await Promise.all([...this.forwarders.values()].map((f) => f.stop()))
  }

  /** The deliveries whose data time is more than maxClockSkewMs ahead of this site's clock, each refused naming its field. */
  private future (deliveries: ReadonlyArray<{ index: number, delivery: Delivery }>): RefusedItem[] {
    const now = (this.options.now ?? Date.now)()
    const skew = this.options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS
    const latest = now + skew
    const refused: RefusedItem[] = []
    for (const { index, delivery: d } of deliveries) {
      const [field, ts] = d.to > latest ? ['to', d.to] : ['samples', d.samples?.reduce((max, s) => Math.max(max, s.ts), 0) ?? 0]
      if (ts > latest) {
        refused.push(refusedDelivery(index, d, `deliveries[${index}].${field}: data time ${new Date(ts).toISOString()} is ${Math.round((ts - now) / 1000)} s ahead of this site's clock; at most ${skew / 1000} s is allowed`))
      }
    }
    return refused
  }

  /**
   * Where VM v's deliveries go: its current record's upstream, else (it left) the upstream it had
   * when it left, for `tombstoneMs`. A partner may send only for a VM this site delegated to it
   * (now, or before the VM moved on); a host only for a VM on that host.
   */
  private route (vm: string, from: string): Route {
    const current = this.options.state.location(vm)
    const former = this.options.state.formerLocations(vm, Date.now() - this.options.tombstoneMs)
    if (current === undefined && former.length === 0) return { refused: new ProtocolError('unknown-vm', `this site is not responsible for ${vm}`) }
    if (from.startsWith('host:')) {
      const host = from.slice('host:'.length)
      if (!onHost(current, host) && !former.some((f) => onHost(f, host))) return { refused: new ProtocolError('not-permitted', `${vm} does not run on host ${host}`) }
    } else if (from !== LOCAL && !ranAt(current, from) && !former.some((f) => ranAt(f, from))) {
      return { refused: new ProtocolError('not-permitted', `${vm} was not delegated to ${from} by this site`) }
    }
    return { nextHop: current !== undefined ? current.upstream : former[0].upstream }
  }

  private forwarder (nextHop: string): RelayForwarder {
    let forwarder = this.forwarders.get(nextHop)
    if (forwarder === undefined) {
      forwarder = new RelayForwarder({
        nextHop,
        outbox: this.outbox,
        send: this.options.send,
        lingerMs: this.options.lingerMs,
        maxBytes: this.options.maxBatchBytes,
        log: this.options.log,
      })
      this.forwarders.set(nextHop, forwarder)
    }
    return forwarder
  }
}

function onHost (record: Pick<LocationRecord, 'kind' | 'target'> | undefined, host: string): boolean {
  return record !== undefined && record.kind === 'host' && record.target === host
}

function ranAt (record: Pick<LocationRecord, 'kind' | 'target'> | undefined, site: string): boolean {
  return record !== undefined && record.kind === 'partner' && record.target === site
}
