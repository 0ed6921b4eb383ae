/**
 * The plug-in contract between a metric source and the agent core (agent/collect), after
 * node_exporter's collectors: the core calls `collect` at scrape time, times it, gives it a
 * deadline through `signal`, and isolates its failure; a collector keeps no timers of its own.
 */

/** One value of one series, in base units (seconds, bytes). */
export interface Sample {
  name: string
  help: string
  type: 'counter' | 'gauge'
  labels: Record<string, string>
  value: number
}

/** What a collector may emit, declared up front so the first scrape already shows every family. */
export interface MetricFamily {
  name: string
  help: string
  type: 'counter' | 'gauge'
}

export interface Collector {
  /** Short, stable, used as the `collector` label of fedvm_collector_* (e.g. `libvirt`). */
  readonly name: string
  /**
   * The families `collect` can return (optional, like Prometheus' Describe). A family that is
   * not declared is still exported, from the scrape after the one where it first appears.
   */
  readonly families?: readonly MetricFamily[]
  /**
   * Reads the source once. Resolves with every sample of this collection, or rejects; must stop
   * waiting (reject) soon after `signal` aborts. Never called twice at once by the core.
   */
  collect (signal: AbortSignal): Promise<Sample[]>
}
