import { join } from 'node:path'
import type { Children } from './children'
import { REVENUE, startDirVm } from './dir-guest'
import { startHostAgents } from './host-agents'
import { startSites, type SiteShape } from './sites'
import type { Stage } from './story'

const VM_ID = 'web-1'
const USERS = 'kpi:users.current_users'
const RULE = { name: 'too-busy', when: `raw(${USERS}) > 1000 for 3s` }

/**
 * The roles: A is the VM's primary site with no room of its own, B runs no hosts and delegates, C
 * has two hosts with room for one VM each (so a migration has somewhere to go).
 */
export function federationShapes (rule: { name: string, when: string }, cHosts: SiteShape['hosts']): SiteShape[] {
  return [
    { id: 'site-a', role: 'primary, no hosts', partners: ['site-b'], hosts: [], monitoring: { rules: [{ ...rule, action: 'forced-migration' }] } },
    { id: 'site-b', role: 'no hosts, delegates', partners: ['site-a', 'site-c'], hosts: [] },
    { id: 'site-c', role: `hosts ${cHosts.map((h) => h.id).join(', ')}`, partners: ['site-b'], hosts: cHosts, ingest: true },
  ]
}

/** Directory hosts: the sites move the VM's files, the guest (guestfs + the app) runs here throughout. */
export async function dirStage (children: Children, root: string, say: (line: string) => void): Promise<Stage> {
  say(`fedvm demo: three sites on 127.0.0.1, directory hosts standing in for hypervisors; work folder ${root} (Ctrl-C stops and cleans up)`)
  const [a, b, c] = await startSites(children, root, federationShapes(RULE, [{ id: 'c1', maxVms: 1 }, { id: 'c2', maxVms: 1 }]))
  say(`keys made (fedvm keygen): ${[a, b, c].map((s) => `${s.id} ${s.keys.publicKey.slice(0, 8)}…`).join(', ')}; partners exchanged keys and TLS fingerprints: A↔B, B↔C`)
  say(`sites running (fedvm site run): ${[a, b, c].map((s) => `${s.id} ${s.url} (${s.shape.role})`).join(' · ')}; A's rule: ${RULE.when} → Forced migration`)

  const descriptor = {
    id: VM_ID,
    primarySite: { id: a.id, publicKey: a.keys.sealPublicKey },
    monitoring: [
      { metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
      { metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 5000, format: 'processed', function: 'median' },
      { metric: 'kpi:revenue', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
    ],
  }
  const vm = await startDirVm(children, root, { id: VM_ID, descriptor, sealPublicKeyFile: a.sealPublicKeyFile })
  say(`the VM's guest: guestfs mounted on ${vm.mountpoint}; its app (a shell loop) writes unencrypted/users every 0.5 s and encrypted/revenue sealed for site-a (fedvm seal)`)
  const agents = await startHostAgents(children, root, c)
  say(`host agents (fedvm agent run) on site-c's hosts ${agents.map((x) => x.hostId).join(' and ')}: no VM configured, each watches its host's VM folder and posts to site-c's ingest`)

  return {
    a,
    b,
    c,
    vm: { id: VM_ID, intake: vm.intake },
    agents,
    rule: RULE,
    patienceMs: 60_000,
    sealed: { metric: 'kpi:revenue', plaintext: REVENUE, notIn: [b.dir, c.dir, join(root, 'agents')] },
    surge: async () => {
      process.kill(vm.app.pid, 'SIGUSR1')
      return `a traffic surge: the app now writes 1200-1400 users every 0.5 s (kill -USR1 ${vm.app.pid})`
    },
  }
}
