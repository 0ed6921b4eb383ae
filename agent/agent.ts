import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import { dirname } from 'node:path'
import type { AddressInfo } from 'node:net'
import { ready as sodiumReady } from '../protocol/crypto/sealed-box'
import { listenAddress, loadConfig, type AgentConfig, type VmConfig } from './config/agent-config'
import { descriptorFromText } from './descriptor/descriptor-text'
import type { VmDescriptor } from './descriptor/vm-descriptor'
import { VmMonitor } from './engine/vm-monitor'
import { FeedClient } from './feed/feed-client'
import { followGuest } from './feed/follow-guest'
import { readHandover, writeHandover } from './feed/feed-handover'
import type { StatsFrame } from '../protocol/kpi-feed/frames'
import { createAgentRegistry } from './outputs/agent-metrics'
import { consumerName, type OutboxConsumer } from './outputs/outbox-consumer'
import { createConsumer } from './outputs/create-consumer'
import type { RetryBounds } from './outputs/http-consumer'
import { startMetricsServer } from './outputs/metrics-server'
import { loadWebConfig } from '../protocol/http/web-config'
import { AgentStore } from './state/agent-store'
import { VERSION } from './build-info'
import { registerCollectors } from './collect'
import { DataPointPoller } from './engine/data-point-poller'
import { LibvirtCollector } from '../host/libvirt/libvirt-collector'
import { LibvirtHypervisor } from '../host/libvirt/libvirt-hypervisor'
import type { Hypervisor } from '../host/hypervisor'
import { VmDiscovery, type DiscoveredVm } from './discovery/vm-discovery'
import { VmDirectory } from './discovery/vm-directory'
import { runningDomainsOf } from './discovery/running-domains'


interface RunningVm {
  config: VmConfig
  monitor: VmMonitor
  /** The descriptor applied last: an unchanged one (discovery's set changed elsewhere) is not applied again. */
  descriptor?: VmDescriptor
  feed?: FeedClient
}

/**
 * The host agent: follows each VM's KPI feed, runs its descriptor's monitoring specifiers, serves
 * /metrics and pushes deliveries through the durable outbox. `reload()` (SIGHUP) re-reads the
 * config and descriptors; changed specifiers and deadLetters bounds take effect at once, nothing
 * queued is lost.
 */
export class Agent {
  private readonly vms = new Map<string, RunningVm>()
  private readonly consumers = new Map<string, OutboxConsumer>()
  /** Each running consumer's config as JSON: a changed one is restarted (its outbox stays). */
  private readonly consumerConfigs = new Map<string, string>()
  private config: AgentConfig
  private poller?: DataPointPoller
  private hypervisor?: Hypervisor
  /** `discover`: VMs found in the VM directory, followed like `vms` entries (which win on a name clash). */
  private discovery?: VmDiscovery
  private discovered: ReadonlyMap<string, DiscoveredVm> = new Map()
  private configuredDescriptors = new Map<string, VmDescriptor>()
  /**
   * How long http consumers retry refusals before setting deliveries aside: one object every
   * consumer holds and reads at each refusal, so a reload changes its fields in place.
   */
  private readonly retryBounds: RetryBounds

  private constructor (
    private readonly configFile: string,
    config: AgentConfig,
    private readonly store: AgentStore,
    private readonly server: Server,
    private readonly log: (line: string) => void,
  ) {
    this.config = config
    this.retryBounds = { unplacedAfterMs: config.deadLetters.unplacedAfterMs, unauthenticatedAfterMs: config.deadLetters.unauthenticatedAfterMs }
  }

  static async start (configFile: string, log: (line: string) => void): Promise<Agent> {
    const config = await loadConfig(configFile)
    const descriptors = await readDescriptors(config)
    await sodiumReady()
    const store = new AgentStore(config.stateDir, log, config.deadLetters)
    const { host, port } = listenAddress(config.listen)
    const holder: { agent?: Agent } = {}
    const registry = createAgentRegistry({
      monitors: () => [...(holder.agent?.vms.values() ?? [])].map((vm) => vm.monitor),
      consumers: () => holder.agent?.consumers.values() ?? [],
      store,
      storage: store.health,
      version: VERSION,
    })
    const server = await startMetricsServer(registry, host, port, config.webConfig === undefined ? undefined : await loadWebConfig(config.webConfig))
    const agent = new Agent(configFile, config, store, server, log)
    holder.agent = agent
    if (config.hypervisor) {
      const hypervisor = new LibvirtHypervisor({ socketPath: config.hypervisor.socket })
      const { keptGroups, keptMaxAgeMs } = config.hypervisor
      registerCollectors(registry, [new LibvirtCollector({ hypervisor, log, keptGroups, keptMaxAgeMs })], { log })
      agent.hypervisor = hypervisor
      agent.poller = new DataPointPoller(hypervisor, store, () => agent.domains(), config.hypervisor.pollIntervalMs, log)
      agent.poller.start()
    }
    agent.apply(config, descriptors)
    agent.startDiscovery()
    log(`agent: serving /metrics on ${agent.metricsUrl}, ${config.vms.length} VM(s), ${config.consumers.length} consumer(s)`)
    return agent
  }

  get metricsUrl (): string {
    const { address, port } = this.server.address() as AddressInfo
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`
  }

  /** Re-reads the config and the descriptors; a bad one is logged and the running set-up kept. */
  async reload (): Promise<void> {
    try {
      const config = await loadConfig(this.configFile)
      const descriptors = await readDescriptors(config)
      if (config.listen !== this.config.listen || config.stateDir !== this.config.stateDir) {
        this.log('agent: listen and stateDir changes take effect at the next restart')
      }
      // First: a store that cannot apply the new bounds refuses the reload before anything else changed.
      this.applyDeadLetters(config.deadLetters)
      this.apply(config, descriptors)
      const restartDiscovery = JSON.stringify(config.discover) !== JSON.stringify(this.config.discover)
      this.config = config
      if (restartDiscovery) await this.restartDiscovery()
      this.log('agent: configuration reloaded')
    } catch (err) {
      this.log(`agent: reload refused, keeping the running configuration: ${(err as Error).message}`)
    }
  }

  /**
   * A changed `deadLetters` section, live: the store's bounds (what is past them now is dropped at
   * once, logged) and the consumers' retry bounds (each reads them at its next refusal, so a
   * delivery queued longer ago than a shortened bound is set aside then).
   */
  private applyDeadLetters (next: AgentConfig['deadLetters']): void {
    const before = this.config.deadLetters
    const changed = (Object.keys(next) as Array<keyof typeof next>).filter((key) => next[key] !== before[key])
    if (changed.length === 0) return
    const dropped = this.store.setDeadLetterLimits({ maxRows: next.maxRows, maxAgeMs: next.maxAgeMs }, Date.now())
    this.retryBounds.unplacedAfterMs = next.unplacedAfterMs
    this.retryBounds.unauthenticatedAfterMs = next.unauthenticatedAfterMs
    this.log(`agent: deadLetters changed: ${changed.map((key) => `${key} ${before[key]} → ${next[key]}`).join(', ')}`)
    if (dropped > 0) this.log(`agent: the dead-letter store dropped ${dropped} old entr${dropped === 1 ? 'y' : 'ies'} (past the new deadLetters.maxRows or maxAgeMs)`)
  }

  async stop (): Promise<void> {
    await this.discovery?.stop()
    this.poller?.stop()
    await this.hypervisor?.close()
    for (const vm of this.vms.values()) this.stopVm(vm)
    for (const consumer of this.consumers.values()) consumer.stop()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    this.store.close()
  }

  /** Each VM's libvirt domain (its `domain`, or its name) and monitor. */
  private * domains (): Iterable<{ domain: string, monitor: VmMonitor }> {
    for (const vm of this.vms.values()) yield { domain: vm.config.domain ?? vm.config.name, monitor: vm.monitor }
  }

  private startDiscovery (): void {
    const discover = this.config.discover
    if (!discover) return
    this.discovery = new VmDiscovery({
      directory: new VmDirectory(discover.vmDir),
      domains: this.hypervisor && runningDomainsOf(this.hypervisor),
      intervalMs: discover.intervalMs,
      onChange: (vms) => {
        this.discovered = vms
        this.apply(this.config, this.configuredDescriptors)
      },
      log: this.log,
    })
    this.discovery.start()
  }

  private async restartDiscovery (): Promise<void> {
    await this.discovery?.stop()
    this.discovery = undefined
    this.discovered = new Map()
    this.apply(this.config, this.configuredDescriptors)
    this.startDiscovery()
  }

  private apply (config: AgentConfig, configuredDescriptors: Map<string, VmDescriptor>): void {
    this.applyConsumers(config)
    this.configuredDescriptors = configuredDescriptors
    const descriptors = new Map(configuredDescriptors)
    const vms = [...config.vms]
    for (const [name, found] of this.discovered) {
      if (descriptors.has(name)) continue
      vms.push(found.config)
      descriptors.set(name, found.descriptor)
    }
    for (const [name, running] of this.vms) {
      if (!vms.some((vm) => vm.name === name)) {
        this.stopVm(running, true)
        this.vms.delete(name)
      }
    }
    for (const vmConfig of vms) {
      let running = this.vms.get(vmConfig.name)
      if (!running) {
        const monitor = new VmMonitor(vmConfig.name, {
          store: this.store,
          consumers: () => [...this.consumers.keys()],
          delivered: () => this.kickConsumers(),
          log: this.log,
        })
        running = { config: vmConfig, monitor }
        this.vms.set(vmConfig.name, running)
      }
      const descriptor = descriptors.get(vmConfig.name)!
      if (running.descriptor !== descriptor) running.monitor.configure(descriptor)
      running.descriptor = descriptor
      if (!running.feed || running.config.feed !== vmConfig.feed) {
        running.feed?.stop()
        // A discovered VM's folder carries the feed hand-over (agent/feed/feed-handover.ts).
        const folder = this.discovered.get(vmConfig.name)?.config.descriptor === vmConfig.descriptor ? dirname(vmConfig.descriptor) : undefined
        running.feed = vmConfig.feed ? this.startFeed(vmConfig.name, vmConfig.feed, running.monitor, folder) : undefined
      }
      running.config = vmConfig
    }
  }

  private applyConsumers (config: AgentConfig): void {
    const wanted = new Map(config.consumers.map((c) => [consumerName(c), c]))
    for (const [name, consumer] of this.consumers) {
      if (this.consumerConfigs.get(name) !== JSON.stringify(wanted.get(name))) {
        consumer.stop()
        this.consumers.delete(name)
      }
    }
    for (const [name, c] of wanted) {
      if (this.consumers.has(name)) continue
      const consumer = createConsumer(c, this.store, this.log, this.retryBounds)
      this.consumers.set(name, consumer)
      this.consumerConfigs.set(name, JSON.stringify(c))
      consumer.start()
    }
  }

  private startFeed (vm: string, endpoint: string, monitor: VmMonitor, folder?: string): FeedClient {
    let handedOver: string | undefined
    const feed = new FeedClient({
      endpoint,
      cursor: () => this.store.cursor(vm),
      noCursor: () => this.store.cursorEpoch(vm) === undefined && this.store.cursor(vm) === 0n,
      onRows: (rows) => {
        this.store.transaction(() => {
          monitor.ingest(rows, this.store.cursorEpoch(vm))
          this.store.setCursor(vm, BigInt(rows[rows.length - 1].seq))
        })
      },
      // /metrics shows a row as soon as it arrives (each once), not after the batch that stores it.
      onArrived: (rows) => { for (const row of rows) monitor.view.record(row) },
      onStats: (stats, streamingFrom) => {
        monitor.view.recordStats(stats)
        return this.followGuest(vm, monitor, stats, streamingFrom, folder)
      },
      onConnected: (connected) => {
        monitor.view.feedConnected = connected
        // The feed ended (QEMU exited: saved or shut down to leave): its rows are stored, leave the cursor for the next host.
        const epoch = this.store.cursorEpoch(vm)
        const mark = `${epoch ?? ''}/${this.store.cursor(vm)}`
        if (connected || folder === undefined || epoch === undefined || mark === handedOver) return
        try {
          writeHandover(folder, epoch, this.store.cursor(vm))
          handedOver = mark
        } catch (err) {
          this.log(`agent: ${vm}: cannot write the feed hand-over in ${folder}: ${(err as Error).message}`)
        }
      },
      log: this.log,
    })
    feed.start()
    return feed
  }

  /** Moves the cursor with the guest's database and its acknowledged position (agent/feed/follow-guest.ts); true: say hello again. */
  private followGuest (vm: string, monitor: VmMonitor, stats: StatsFrame, streamingFrom?: bigint, folder?: string): boolean {
    const state = { epoch: this.store.cursorEpoch(vm), cursor: this.store.cursor(vm) }
    // Looked at once per hello (the first stats), not for every later stats.
    const handover = folder !== undefined && streamingFrom !== undefined ? readHandover(folder) : undefined
    const next = followGuest(state, stats, streamingFrom, handover)
    if (next.reason) this.log(`agent: ${vm}: ${next.reason}`)
    if (next.epoch !== state.epoch || next.cursor !== state.cursor) {
      this.store.restartCursor(vm, next.epoch, next.cursor)
      monitor.view.restartAfter(next.cursor)
    }
    return next.rehello
  }

  /** `left`: the VM is no longer followed here (it migrated, or its entry went): its open windows are delivered now. */
  private stopVm (vm: RunningVm, left = false): void {
    vm.feed?.stop()
    if (left) vm.monitor.finish()
    else vm.monitor.stop()
  }

  private kickConsumers (): void {
    for (const consumer of this.consumers.values()) consumer.kick()
  }
}

async function readDescriptors (config: AgentConfig): Promise<Map<string, VmDescriptor>> {
  const descriptors = new Map<string, VmDescriptor>()
  for (const [i, vm] of config.vms.entries()) {
    let text: string
    try {
      text = await readFile(vm.descriptor, 'utf8')
    } catch (err) {
      throw new Error(`vms[${i}].descriptor: cannot read ${vm.descriptor}: ${(err as Error).message}`, { cause: err })
    }
    descriptors.set(vm.name, descriptorFromText(text, `vms[${i}].descriptor (${vm.descriptor})`))
  }
  return descriptors
}
