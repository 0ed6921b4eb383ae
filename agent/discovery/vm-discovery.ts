import type { DomainRef } from '../../host/hypervisor'
import type { VmConfig } from '../config/agent-config'
import { kpiChannelSocket } from './domain-channel'
import { parseDescriptor, type VmDescriptor } from '../descriptor/vm-descriptor'
import type { RunningDomains } from './running-domains'
import type { FoundVm, VmDirectoryReader } from './vm-directory'

/** A VM found on this host: the agent follows it exactly like a configured `vms` entry. */
export interface DiscoveredVm {
  config: VmConfig
  descriptor: VmDescriptor
  /** The descriptor's text: an unchanged one is not applied again. */
  descriptorText: string
}

export interface VmDiscoveryOptions {
  directory: VmDirectoryReader
  /** libvirt's view: only VMs whose domain runs are followed. Without it every VM folder is. */
  domains?: RunningDomains
  intervalMs: number
  /** Called with the whole new set whenever a VM arrived, left, or its descriptor or channel changed. */
  onChange: (vms: ReadonlyMap<string, DiscoveredVm>) => void
  log: (line: string) => void
}

/**
 * Watches the host's VM directory and libvirt's domain list, so a VM that migrated here is
 * followed without manual config and one that left is dropped. A scan that fails (libvirtd
 * restarting, the folder unreadable) changes nothing: VMs are never dropped for a blind moment.
 */
export class VmDiscovery {
  private vms = new Map<string, DiscoveredVm>()
  private timer?: NodeJS.Timeout
  private stopped = false
  private running?: Promise<void>
  private lastError = ''
  /** Descriptor texts already reported as invalid, per VM: logged once, not every interval. */
  private readonly refused = new Map<string, string>()
  /** KPI channels read from live domain XML, by domain uuid and run id (a restart or restore gives a new id). */
  private readonly liveChannels = new Map<string, string | undefined>()

  constructor (private readonly options: VmDiscoveryOptions) {}

  get current (): ReadonlyMap<string, DiscoveredVm> {
    return this.vms
  }

  start (): void {
    const tick = (): void => {
      this.running = this.scan().finally(() => {
        this.running = undefined
        if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs)
      })
    }
    tick()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  /** One look at the folder and libvirt; resolves once onChange (if any) has run. */
  async scan (): Promise<void> {
    let found: FoundVm[]
    let running: Map<string, DomainRef> | undefined
    try {
      found = await this.options.directory.scan()
      running = await this.options.domains?.running()
      if (running) found = await Promise.all(found.map(async (vm) => await this.withLiveChannel(vm, running!.get(vm.domain))))
    } catch (err) {
      const message = (err as Error).message
      if (message !== this.lastError) this.options.log(`discovery: cannot look at ${this.options.directory.vmDir} or libvirt, keeping the VMs followed now: ${message}`)
      this.lastError = message
      return
    }
    this.lastError = ''
    if (this.stopped) return
    if (running) {
      const live = new Set([...running.values()].map((ref) => `${ref.uuid}/${ref.id}`))
      for (const key of this.liveChannels.keys()) if (!live.has(key)) this.liveChannels.delete(key)
    }
    const next = new Map<string, DiscoveredVm>()
    for (const vm of found) {
      if (running !== undefined && !running.has(vm.domain)) continue
      const entry = this.entry(vm)
      if (entry) next.set(vm.id, entry)
    }
    if (!changed(this.vms, next)) return
    for (const [id, vm] of next) {
      const before = this.vms.get(id)
      if (!before) this.options.log(`discovery: VM ${id} is here (domain ${vm.config.domain ?? id}, feed ${vm.config.feed ?? 'none'})`)
      else if (before.config.feed !== vm.config.feed) this.options.log(`discovery: VM ${id}'s KPI channel is now ${vm.config.feed ?? 'none'}`)
      // A descriptor rewritten in place (the Control interface's update) is applied now; its version says which one.
      if (before && before.descriptor !== vm.descriptor) this.options.log(`discovery: VM ${id}'s descriptor is applied (version ${descriptorVersion(vm.descriptor)})`)
    }
    for (const id of this.vms.keys()) if (!next.has(id)) this.options.log(`discovery: VM ${id} left (or stopped running)`)
    this.vms = next
    this.options.onChange(next)
  }

  /**
   * A running VM whose folder has no domain.xml (a VM that was to leave and stayed: LibvirtVmHost
   * removed it) gets its KPI channel from the domain's live definition.
   */
  private async withLiveChannel (vm: FoundVm, ref: DomainRef | undefined): Promise<FoundVm> {
    const domains = this.options.domains
    if (vm.hasDomainXml || ref === undefined || domains?.liveXml === undefined) return vm
    const key = `${ref.uuid}/${ref.id}`
    if (!this.liveChannels.has(key)) this.liveChannels.set(key, kpiChannelSocket(await domains.liveXml(ref)))
    const feedSocket = this.liveChannels.get(key)
    return feedSocket === undefined ? vm : { ...vm, feedSocket }
  }

  /** The VM as the agent follows it; an invalid descriptor keeps the one applied before (as a refused reload does). */
  private entry (vm: FoundVm): DiscoveredVm | undefined {
    const config: VmConfig = { name: vm.id, descriptor: vm.descriptorFile, domain: vm.domain, ...(vm.feedSocket ? { feed: `unix:${vm.feedSocket}` } : {}) }
    const before = this.vms.get(vm.id)
    if (before && before.descriptorText === vm.descriptorText) return sameConfig(before.config, config) ? before : { ...before, config }
    try {
      const descriptor = parseDescriptor(parseJson(vm.descriptorText, vm.descriptorFile), vm.descriptorFile)
      this.refused.delete(vm.id)
      return { config, descriptor, descriptorText: vm.descriptorText }
    } catch (err) {
      if (this.refused.get(vm.id) !== vm.descriptorText) {
        this.options.log(`discovery: VM ${vm.id}: descriptor refused${before ? ', keeping the one applied before' : ', not following it'}: ${(err as Error).message}`)
      }
      this.refused.set(vm.id, vm.descriptorText)
      return before && { ...before, config }
    }
  }
}

function parseJson (text: string, file: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err })
  }
}

function sameConfig (a: VmConfig, b: VmConfig): boolean {
  return a.name === b.name && a.descriptor === b.descriptor && a.feed === b.feed && a.domain === b.domain
}

function changed (before: ReadonlyMap<string, DiscoveredVm>, after: ReadonlyMap<string, DiscoveredVm>): boolean {
  if (before.size !== after.size) return true
  for (const [id, vm] of after) {
    const old = before.get(id)
    if (old === undefined || old.descriptor !== vm.descriptor || !sameConfig(old.config, vm.config)) return true
  }
  return false
}

/** The descriptor's `version` (0 when it has none), for the log. */
function descriptorVersion (descriptor: VmDescriptor): number {
  const version = (descriptor as { version?: unknown }).version
  return typeof version === 'number' ? version : 0
}
