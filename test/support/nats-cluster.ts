import { freePort } from './free-port'
import { NatsServer } from './nats-server'
import type { Teardownable } from './teardownable'

const CLUSTER_NAME = 'fedvm-test'

/**
 * A JetStream cluster of real `nats-server` processes (Debian's) for one test: each member on
 * loopback with its own client, monitoring and route ports and its own store dir, every member
 * routed to every other. A stream with replicas 3 keeps taking messages while one member is
 * SIGKILLed (two of three are a quorum). Every member is stopped by PID at teardown, also on failure.
 */
export class NatsCluster {
  private constructor (readonly servers: NatsServer[]) {}

  static async start (t: Teardownable, size = 3): Promise<NatsCluster> {
    const routePorts = await Promise.all(Array.from({ length: size }, async () => await freePort()))
    // A route to itself is recognised and dropped by nats-server, so every member gets the same list.
    const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(',')
    const servers = await Promise.all(routePorts.map(async (port) => await NatsServer.create(t, [
      '--cluster_name', CLUSTER_NAME, '--cluster', `nats://127.0.0.1:${port}`, '--routes', routes,
    ])))
    // A member answers healthy only once the JetStream meta group has a leader: start all, then wait.
    for (const server of servers) server.spawn()
    await Promise.all(servers.map(async (s) => await s.waitReady()))
    return new NatsCluster(servers)
  }

  /** Every member's client URL (what agents and sites are configured with). */
  get urls (): string[] {
    return this.servers.map((s) => s.url)
  }

  /** The member running under a server name (as JetStream's cluster info names it). */
  byName (name: string | undefined): NatsServer {
    const server = this.servers.find((s) => s.name === name)
    if (server === undefined) throw new Error(`no cluster member named ${String(name)} (members: ${this.servers.map((s) => s.name).join(', ')})`)
    return server
  }

  /** The last lines each member logged, for a failing test's message. */
  logs (): string {
    return this.servers.map((s) => `--- ${s.name}${s.running ? '' : ' (not running)'}\n${s.log().slice(-1500)}`).join('\n')
  }
}
