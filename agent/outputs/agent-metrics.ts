import { Counter, Gauge, Registry } from 'prom-client'
import type { VmMonitor } from '../engine/vm-monitor'
import type { OutboxConsumer } from './outbox-consumer'
import type { AgentStore } from '../state/agent-store'
import { isStorageError, type StorageHealth } from '../state/storage-health'

export interface MetricsSources {
  monitors: () => Iterable<VmMonitor>
  consumers: () => Iterable<OutboxConsumer>
  store: AgentStore
  /** Whether the store's writes succeed (the store's own, apart so a registry can be built without a store). */
  storage: StorageHealth
  version: string
}

/**
 * The agent's own registry (never prom-client's global one), filled at scrape time from the
 * monitors' views (DESIGN.md Contract 4). The VM's name is the `domain` label.
 */
export function createAgentRegistry (sources: MetricsSources): Registry {
  const registry = new Registry()
  const registers = [registry]

  new Gauge({
    name: 'fedvm_kpi', help: 'Latest value of each numeric KPI column.', labelNames: ['domain', 'kpi', 'column'], registers,
    collect () {
      this.reset()
      for (const m of sources.monitors()) {
        for (const [kpi, state] of m.view.kpis) for (const [column, value] of state.values) this.set({ domain: m.vm, kpi, column }, value)
      }
    },
  })
  new Gauge({
    name: 'fedvm_kpi_processed', help: 'Latest processed value delivered per specifier metric and function.', labelNames: ['domain', 'metric', 'function'], registers,
    collect () {
      this.reset()
      for (const m of sources.monitors()) for (const p of m.view.processed.values()) this.set({ domain: m.vm, metric: p.metric, function: p.fn }, p.value)
    },
  })
  new Counter({
    name: 'fedvm_kpi_writes_total', help: 'KPI rows received from the guest, per KPI (encrypted ones too).', labelNames: ['domain', 'kpi'], registers,
    collect () {
      this.reset()
      for (const m of sources.monitors()) for (const [kpi, state] of m.view.kpis) this.inc({ domain: m.vm, kpi }, state.writes)
    },
  })
  new Gauge({
    name: 'fedvm_kpi_last_write_timestamp_seconds', help: 'Commit time of the latest row of each KPI.', labelNames: ['domain', 'kpi'], registers,
    collect () {
      this.reset()
      for (const m of sources.monitors()) for (const [kpi, state] of m.view.kpis) this.set({ domain: m.vm, kpi }, state.lastWriteMs / 1000)
    },
  })
  new Counter({
    name: 'fedvm_kpi_parse_errors_total', help: 'KPI writes the guest refused (bad CSV, bad names), as the guest counts them.', labelNames: ['domain'], registers,
    collect () {
      this.reset()
      for (const m of sources.monitors()) this.inc({ domain: m.vm }, m.view.guest.refused)
    },
  })
  new Gauge({
    name: 'fedvm_feed_up', help: '1 while the agent is connected to the VM\'s KPI feed.', labelNames: ['domain'], registers,
    collect () {
      this.reset()
      for (const m of sources.monitors()) this.set({ domain: m.vm }, m.view.feedConnected ? 1 : 0)
    },
  })
  new Gauge({
    name: 'fedvm_delivery_queue_length', help: 'Deliveries in the durable outbox not yet acknowledged, per consumer.', labelNames: ['consumer'], registers,
    collect () {
      this.reset()
      for (const c of sources.consumers()) {
        try {
          this.set({ consumer: c.name }, sources.store.queueLength(c.name))
        } catch (err) {
          // An unreadable store (an I/O error) leaves the series out: the rest of /metrics, storage health included, still answers.
          if (!isStorageError(err)) throw err
        }
      }
    },
  })
  new Counter({
    name: 'fedvm_delivery_dead_lettered_total', help: 'Deliveries the receiver refused for good, moved from the outbox to the dead-letter store, per consumer and reason (the refusal\'s code).', labelNames: ['consumer', 'reason'], registers,
    collect () {
      this.reset()
      for (const c of sources.consumers()) for (const [reason, count] of c.stats.deadLettered) this.inc({ consumer: c.name, reason }, count)
    },
  })
  new Counter({
    name: 'fedvm_delivery_dead_letters_dropped_total', help: 'Old entries the dead-letter store dropped to stay within deadLetters.maxRows and maxAgeMs, per consumer.', labelNames: ['consumer'], registers,
    collect () {
      this.reset()
      for (const c of sources.consumers()) this.inc({ consumer: c.name }, c.stats.deadLettersDropped)
    },
  })
  new Counter({
    name: 'fedvm_delivery_signature_refusals_total', help: 'POSTs the site answered 401: it refuses this host\'s signature (unknown-sender: it does not know the host or its key; bad-signature; stale-timestamp: the clocks disagree), per consumer and code.', labelNames: ['consumer', 'code'], registers,
    collect () {
      this.reset()
      for (const c of sources.consumers()) for (const [code, count] of c.signature?.counts ?? []) this.inc({ consumer: c.name, code }, count)
    },
  })
  new Gauge({
    name: 'fedvm_delivery_signature_refused', help: '1 while the site\'s latest answer to the consumer was a 401 (it refuses this host\'s signature; deliveries wait in the outbox), else 0.', labelNames: ['consumer'], registers,
    collect () {
      this.reset()
      for (const c of sources.consumers()) if (c.signature !== undefined) this.set({ consumer: c.name }, c.signature.refusedNow ? 1 : 0)
    },
  })
  new Gauge({
    name: 'fedvm_delivery_dead_letter_length', help: 'Deliveries in the dead-letter store (fedvm agent dead-letters lists them), per consumer.', labelNames: ['consumer'], registers,
    collect () {
      this.reset()
      for (const c of sources.consumers()) {
        try {
          this.set({ consumer: c.name }, sources.store.deadLetterLength(c.name))
        } catch (err) {
          if (!isStorageError(err)) throw err
        }
      }
    },
  })
  new Counter({
    name: 'fedvm_agent_storage_errors_total', help: 'Writes to the agent\'s state (stateDir) that SQLite refused (a full disk, an I/O error), per operation; each is retried.', labelNames: ['op'], registers,
    collect () {
      this.reset()
      for (const [op, count] of sources.storage.errors) this.inc({ op }, count)
    },
  })
  new Gauge({
    name: 'fedvm_agent_storage_up', help: '1 while the agent\'s latest write to its state succeeded, 0 while writes fail.', registers,
    collect () {
      this.set(sources.storage.up ? 1 : 0)
    },
  })
  new Gauge({
    name: 'fedvm_build_info', help: 'The running fedvm version.', labelNames: ['version'], registers,
    collect () {
      this.reset()
      this.set({ version: sources.version }, 1)
    },
  })
  return registry
}
