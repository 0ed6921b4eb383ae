import type { RowFrame } from '../../protocol/kpi-feed/frames'
import { sealSync } from '../../protocol/crypto/sealed-box'
import type { VmDescriptor } from '../descriptor/vm-descriptor'
import type { AgentStore } from '../state/agent-store'
import { isStorageError, type StorageOp } from '../state/storage-health'
import { evaluate, type Sample, type WindowResult } from '../processing/window'
import { compileSpecifier, type CompiledSpecifier } from './compiled-specifier'
import { stringifyExact } from '../../protocol/exact-json'
import type { AgentDelivery as Delivery } from '../../protocol/relay/delivery'
import { KpiView } from './kpi-view'
import { formatKpiMetric } from '../../protocol/descriptor/kpi-metric'

export interface MonitorOutputs {
  readonly store: AgentStore
  /** Consumer names; every delivery is queued once per consumer. */
  readonly consumers: () => readonly string[]
  /** Called once a delivery's queueing committed. */
  readonly delivered: (delivery: Delivery) => void
  readonly log?: (line: string) => void
}

/**
 * Runs one VM's monitoring specifiers (DESIGN.md Contract 3) over its KPI rows and timers.
 * Every state change happens inside the caller's store transaction, together with the feed cursor.
 */
export class VmMonitor {
  readonly view = new KpiView()
  private specs: CompiledSpecifier[] = []
  private timers: NodeJS.Timeout[] = []
  private publicKey: Uint8Array = new Uint8Array(32)
  /**
   * `TABLE.COLUMN` texts of column specifiers: an encrypted KPI of that very name is most likely what
   * the specifier meant (`kpi:revenue.v2` for the encrypted revenue.v2, which is `kpi:"revenue.v2"`).
   */
  private misread = new Map<string, string>()

  constructor (readonly vm: string, private readonly outputs: MonitorOutputs) {}

  /** Applies a (new) descriptor at once; windows of specifiers that went away are delivered first. */
  configure (descriptor: VmDescriptor): void {
    const next = descriptor.monitoring.map(compileSpecifier)
    const kept = new Set(next.map((c) => c.key))
    const removed = this.specs.filter((c) => !kept.has(c.key))
    // If the store refuses, the removed specifiers' samples stay in it undelivered: the new specifiers still apply.
    this.guarded(() => { for (const c of removed) this.flushWindow(c, Date.now()) })
    this.stopTimers()
    this.specs = next
    this.publicKey = new Uint8Array(Buffer.from(descriptor.primarySite.publicKey, 'base64'))
    this.view.setHidden(next.filter((c) => c.spec.encrypt && c.kpi?.column).map((c) => [c.kpi!.table, c.kpi!.column!]))
    this.misread = new Map(next.flatMap((c) => (c.kpi?.column === undefined ? [] : [[`${c.kpi.table}.${c.kpi.column}`, c.spec.metric]])))
    for (const c of next) this.startTimers(c)
  }

  stop (): void {
    this.stopTimers()
  }

  /** The VM is no longer followed here (it left the host): every open window is delivered now, then the timers stop. */
  finish (): void {
    this.guarded(() => { for (const c of this.specs) this.flushWindow(c, Date.now()) })
    this.stopTimers()
  }

  /** The hypervisor data points this VM's specifiers read. */
  dataPointsWanted (): Set<string> {
    return new Set(this.specs.flatMap((c) => (c.dataPoint ? [c.dataPoint] : [])))
  }

  /**
   * Rows from the feed, in commit order; call inside the transaction that also moves the cursor.
   * `epoch` (the guest database's identity) goes into delivery ids: the same row gives the same id
   * from any host (a migrated VM's rows are recognised), a different database never collides.
   */
  ingest (rows: readonly RowFrame[], epoch = ''): void {
    const prefix = epoch ? `${epoch.slice(0, 12)}.` : ''
    // The agent records rows on arrival; recording again is a no-op (the view skips rows it has seen), and records rows that came no other way.
    this.outputs.store.afterCommit(() => {
      for (const row of rows) {
        this.view.record(row)
        if (row.sealed !== undefined && this.misread.size > 0) this.warnMisread(row.kpi)
      }
    })
    for (const row of rows) {
      for (const c of this.specs) {
        const sample = sampleOf(c, row)
        if (sample === undefined) continue
        if (c.spec.monitoringIntervalMs > 0) this.outputs.store.setLatest(this.vm, c.spec.metric, sample)
        else this.take(c, sample, prefix + row.seq)
      }
    }
  }

  /** Says once that a specifier reads a column where an encrypted KPI of the same text exists. */
  private warnMisread (table: string): void {
    const metric = this.misread.get(table)
    if (metric === undefined) return
    this.misread.delete(table)
    this.outputs.log?.(`agent: ${this.vm}: ${metric} reads a column of an unencrypted KPI, but the guest has an encrypted KPI named ${JSON.stringify(table)}: that one is ${formatKpiMetric({ table })}`)
  }

  /** A hypervisor data point's reading, for specifiers that ask for it. */
  ingestDataPoint (name: string, sample: Sample): void {
    for (const c of this.specs) {
      if (c.dataPoint !== name) continue
      if (c.spec.monitoringIntervalMs > 0) this.outputs.store.setLatest(this.vm, name, sample)
      else this.take(c, sample, `t${sample.ts}`)
    }
  }

  private take (c: CompiledSpecifier, sample: Sample, sampleId: string): void {
    if (c.spec.deliveryIntervalMs > 0) {
      this.outputs.store.addWindowSample(this.vm, c.key, sample)
      return
    }
    const result = evaluate(c.spec, [sample], isOpaque(c))
    if (result) this.deliver(c, result, sample.ts, sample.ts, sampleId)
  }

  private startTimers (c: CompiledSpecifier): void {
    const { monitoringIntervalMs, deliveryIntervalMs } = c.spec
    if (monitoringIntervalMs > 0) {
      this.timers.push(setInterval(() => this.guarded(() => this.monitorTick(c)), monitoringIntervalMs))
    }
    if (deliveryIntervalMs > 0) {
      this.timers.push(setInterval(() => this.guarded(() => this.flushWindow(c, Date.now())), deliveryIntervalMs))
    }
  }

  /** A monitoring interval elapsed: the metric's current value is one sample. */
  private monitorTick (c: CompiledSpecifier): void {
    const latest = this.outputs.store.latest(this.vm, c.spec.metric)
    if (!latest) return
    const now = Date.now()
    this.take(c, { ts: now, value: latest.value }, `t${now}`)
  }

  private flushWindow (c: CompiledSpecifier, now: number): void {
    const samples = this.outputs.store.takeWindow(this.vm, c.key)
    const result = evaluate(c.spec, samples, isOpaque(c))
    if (result) this.deliver(c, result, samples[0].ts, now, `w${now}`)
  }

  private deliver (c: CompiledSpecifier, result: WindowResult, from: number, to: number, suffix: string): void {
    const base = { vm: this.vm, metric: c.spec.metric, format: result.format, from, to }
    const deliveries: Delivery[] = []
    if (isOpaque(c) && result.format === 'raw') {
      // Sealed KPIs pass through one by one: each is its own sealed box, opaque here.
      result.samples.forEach((s, i) => deliveries.push({ ...base, id: `${this.vm}:${c.key}:${suffix}:${i}`, from: s.ts, to: s.ts, sealed: String(s.value) }))
    } else {
      // Only opaque (sealed) windows hold string values, and they took the branch above.
      const payload = result.format === 'raw' ? { samples: result.samples as Array<{ ts: number, value: number | bigint }> } : { function: result.function, value: result.value }
      const id = `${this.vm}:${c.key}:${suffix}`
      if (c.spec.encrypt) {
        const sealed = sealSync(Buffer.from(stringifyExact(payload)), this.publicKey).toString('base64')
        deliveries.push({ ...base, id, ...(result.format === 'processed' ? { function: result.function } : {}), sealed })
      } else {
        deliveries.push({ ...base, id, ...payload })
      }
    }
    const consumers = this.outputs.consumers()
    for (const delivery of deliveries) {
      this.outputs.store.enqueueFor(consumers, delivery)
      this.outputs.store.afterCommit(() => {
        if (result.format === 'processed' && !c.spec.encrypt) this.view.recordProcessed(c.spec.metric, result.function, result.value)
        this.outputs.delivered(delivery)
      })
    }
  }

  /**
   * Runs fn in its own transaction; a write the store refuses (a full disk: counted and logged by
   * the store) leaves the window as it was, so the next tick delivers it.
   */
  private guarded (fn: () => void, op: StorageOp = 'window'): void {
    try {
      this.outputs.store.transaction(fn, op)
    } catch (err) {
      if (!isStorageError(err)) throw err
    }
  }

  private stopTimers (): void {
    for (const timer of this.timers) clearInterval(timer)
    this.timers = []
  }
}

/** Encrypted KPIs (`kpi:TABLE` of a sealed row) are counted and timed, never read. */
function isOpaque (c: CompiledSpecifier): boolean {
  return c.kpi !== undefined && c.kpi.column === undefined
}

/** The sample a row gives a specifier, if any: the column's number, or the sealed bytes for `kpi:TABLE`. */
function sampleOf (c: CompiledSpecifier, row: RowFrame): Sample | undefined {
  if (!c.kpi || c.kpi.table !== row.kpi) return undefined
  if (row.sealed !== undefined) return c.kpi.column === undefined ? { ts: row.ts, value: row.sealed } : undefined
  if (c.kpi.column === undefined || !row.cols || !row.vals) return undefined
  const index = row.cols.indexOf(c.kpi.column)
  const value = index >= 0 ? row.vals[index] : undefined
  return typeof value === 'number' || typeof value === 'bigint' ? { ts: row.ts, value } : undefined
}
