import type { DomainRef, Hypervisor } from '../../host/hypervisor'

/** libvirt's view for discovery (a fake in unit tests). */
export interface RunningDomains {
  /** The domains that run now (running or paused), by name. */
  running: () => Promise<Map<string, DomainRef>>
  /** A running domain's live definition: the KPI channel of a VM whose folder has no domain.xml. */
  liveXml?: (ref: DomainRef) => Promise<string>
}

/** The real connection offers the live XML (host/libvirt/libvirt-hypervisor.ts); the Hypervisor interface does not need it. */
interface DomainXmlSource {
  getDomainXml?: (ref: DomainRef) => Promise<string>
}

/** Active domains (libvirt gives them an id ≥ 0) over the agent's libvirt connection. */
export function runningDomainsOf (hypervisor: Hypervisor & DomainXmlSource): RunningDomains {
  const getDomainXml = hypervisor.getDomainXml?.bind(hypervisor)
  return {
    async running () {
      return new Map((await hypervisor.listDomains()).filter((d) => d.id >= 0).map((d) => [d.name, d]))
    },
    ...(getDomainXml ? { liveXml: async (ref: DomainRef) => await getDomainXml(ref) } : {}),
  }
}
