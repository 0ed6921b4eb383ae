import { rpcTarget } from '../libvirt/guest-clock'
import { DomainControl, DomainControlProc } from '../libvirt/rpc/domain-control'
import { DomainReads, type DomainStateName } from '../libvirt/rpc/domain-reads'
import { checkTransition, type ResourceOutcome, type RunAction, type RunState } from './vm-control'
import type { Demand } from './vm-host'

/**
 * The Control interface on a libvirt host: run-state changes act on the domain (named after the VM)
 * and a changed `resources` is applied to the running domain where libvirt can (memory through the
 * balloon, vCPUs by hot-plug), each field saying whether it was applied and, if not, libvirt's reason.
 */
export class LibvirtControl {
  private readonly control: DomainControl
  private readonly reads: DomainReads

  constructor (uri: string, private readonly shutdownTimeoutMs = 60_000) {
    this.control = new DomainControl(rpcTarget(uri))
    this.reads = new DomainReads(rpcTarget(uri))
  }

  async state (vmId: string): Promise<RunState> {
    return runStateOf(await this.reads.state(vmId))
  }

  /** Acts and answers the state after; a shutdown waits (up to shutdownTimeoutMs) for the guest to power off. */
  async changeRunState (vmId: string, action: RunAction): Promise<RunState> {
    const from = await this.state(vmId)
    checkTransition(from, action)
    const proc = ({ shutdown: DomainControlProc.DOMAIN_SHUTDOWN, start: DomainControlProc.DOMAIN_CREATE, suspend: DomainControlProc.DOMAIN_SUSPEND, resume: DomainControlProc.DOMAIN_RESUME } as const)[action]
    const target = ({ shutdown: 'shut-off', start: 'running', suspend: 'paused', resume: 'running' } as const)[action]
    if (from === target) return from
    await this.control.run(vmId, proc)
    if (action !== 'shutdown') return await this.state(vmId)
    const until = Date.now() + this.shutdownTimeoutMs
    let state = await this.state(vmId)
    while (state !== 'shut-off' && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      state = await this.state(vmId)
    }
    return state
  }

  async applyResources (vmId: string, demand: Demand): Promise<ResourceOutcome> {
    const outcome: ResourceOutcome = {}
    if (await this.state(vmId) === 'shut-off') {
      const detail = 'the domain is not running: the descriptor holds the new value'
      for (const key of Object.keys(demand) as Array<keyof Demand>) outcome[key] = { applied: false, detail }
      return outcome
    }
    if (demand.memoryMiB !== undefined) outcome.memoryMiB = await attempt(() => this.control.setMemoryLive(vmId, demand.memoryMiB!), `balloon target ${demand.memoryMiB} MiB`)
    if (demand.vcpus !== undefined) outcome.vcpus = await attempt(() => this.control.setVcpusLive(vmId, demand.vcpus!), `${demand.vcpus} vCPUs`)
    return outcome
  }
}

async function attempt (act: () => Promise<void>, what: string): Promise<{ applied: boolean, detail: string }> {
  try {
    await act()
    return { applied: true, detail: `${what} set on the running domain` }
  } catch (err) {
    return { applied: false, detail: `libvirt refused ${what}: ${(err as Error).message}`.slice(0, 500) }
  }
}

function runStateOf (state: DomainStateName | undefined): RunState {
  if (state === 'running' || state === 'idle' || state === 'in shutdown') return 'running'
  if (state === 'paused' || state === 'pmsuspended') return 'paused'
  return 'shut-off'
}
