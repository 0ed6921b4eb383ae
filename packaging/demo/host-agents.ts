import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Children, Daemon } from './children'
import { freePort, type Site } from './sites'

export interface HostAgent { hostId: string, daemon: Daemon, metricsUrl: string }

/**
 * `fedvm agent run` for each host of a site, configured with nothing about the VM: it watches the
 * host's VM folder (`discover`), follows the KPI feed a VM's domain.xml names, and posts deliveries
 * to the site's ingest. `hypervisor` (libvirt hosts) adds the domains' own statistics.
 */
export async function startHostAgents (children: Children, root: string, site: Site, hypervisorOf: (hostId: string) => Record<string, unknown> | undefined = () => undefined): Promise<HostAgent[]> {
  const agents: HostAgent[] = []
  for (const host of site.shape.hosts) {
    const dir = join(root, 'agents', host.id)
    await mkdir(dir, { recursive: true })
    const port = await freePort()
    const hypervisor = hypervisorOf(host.id)
    const config = {
      listen: `127.0.0.1:${port}`,
      stateDir: join(dir, 'state'),
      discover: { vmDir: site.vmDir(host.id), intervalMs: 500 },
      ...(hypervisor ? { hypervisor } : {}),
      consumers: [{ type: 'http', name: site.id, url: site.ingestUrl }],
    }
    await writeFile(join(dir, 'agent.json'), JSON.stringify(config, null, 2))
    agents.push({ hostId: host.id, daemon: children.start(`agent-${host.id}`, ['agent', 'run', '--config', join(dir, 'agent.json')]), metricsUrl: `http://127.0.0.1:${port}/metrics` })
  }
  for (const agent of agents) await agent.daemon.waitFor(/agent: serving \/metrics/, 30_000)
  return agents
}
