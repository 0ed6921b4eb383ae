import type { Hypervisor } from '../../host/hypervisor'

/** libvirt's view for discovery: the names of the domains that run now (a fake in unit tests). */
export interface RunningDomains {
  running: () => Promise<Set<string>>
}

/** Active domains (running or paused: libvirt gives them an id ≥ 0) over the agent's libvirt connection. */
export function runningDomainsOf (hypervisor: Hypervisor): RunningDomains {
  return {
    async running () {
      return new Set((await hypervisor.listDomains()).filter((d) => d.id >= 0).map((d) => d.name))
    },
  }
}
