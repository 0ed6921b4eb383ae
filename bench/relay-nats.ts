// bench/relay's NATS transport: a real `nats-server -js` on loopback; the injector
// publishes each delivery with the agent's `nats` consumer's publisher (its site's and VM's subject,
// the id as Nats-Msg-Id, a batch's PubAcks awaited together) and the site takes them from its JetStream
// stream (monitoring.nats) into the relay, from where the signed HTTP hops carry them on.
import { connect } from '@nats-io/transport-node'
import { JetStreamPublisher } from '../agent/outputs/jetstream-publisher'
import { DEFAULT_SUBJECT_PREFIX, deliverySubject } from '../protocol/relay/nats-subjects'
import { NatsServer } from '../test/support/nats-server'
import type { Delivery } from '../protocol/relay/delivery'
import type { TestSite } from '../test/protocol/support/federation'

// The shapes of bench/relay.ts's Injector and Transport (structural: this file compiles on its own).
interface Injector { send (deliveries: Delivery[]): Promise<void>, close (): Promise<void> }
interface Transport { name: string, siteMonitoring (siteId: string): Record<string, unknown>, injector (site: TestSite): Promise<Injector>, processes?: () => Record<string, number>, close (): Promise<void> }

export async function natsTransport (): Promise<Transport> {
  const cleanups: Array<() => unknown> = []
  const server = await NatsServer.start({ teardown: (fn) => cleanups.push(fn) })
  // A bench that dies of an uncaught error skips close(): the server must not outlive it.
  process.once('exit', () => { if (server.pid !== undefined) process.kill(server.pid, 'SIGKILL') })
  return {
    name: 'nats',
    // The local HTTP ingest too: the direct single hop is always a POST (the baseline).
    siteMonitoring: () => ({ ingest: true, nats: { servers: [server.url] } }),
    injector: async (site): Promise<Injector> => {
      const nc = await connect({ servers: server.url })
      const publisher = new JetStreamPublisher(nc)
      const subjects = new Map<string, string>()
      const subjectOf = (vm: string): string => {
        let subject = subjects.get(vm)
        if (subject === undefined) subjects.set(vm, subject = deliverySubject(DEFAULT_SUBJECT_PREFIX, site.spec.id, vm))
        return subject
      }
      return {
        // As the agent's outbox does: what got no PubAck is published again (the same Nats-Msg-Id, so once).
        send: async (deliveries) => {
          let left = deliveries
          for (let attempt = 1; left.length > 0; attempt++) {
            const outcomes = await publisher.publish(left.map((d) => ({ subject: subjectOf(d.vm), id: d.id, body: JSON.stringify(d) })), 5000)
            const failed = left.filter((_, i) => outcomes[i] !== undefined)
            if (failed.length > 0 && attempt >= 5) throw new Error(outcomes.find((o) => o !== undefined))
            if (failed.length > 0) console.error(`bench/relay-nats: ${failed.length} publishes without a PubAck, again (attempt ${attempt + 1})`)
            left = failed
          }
        },
        close: async () => { await nc.close() },
      }
    },
    processes: (): Record<string, number> => (server.pid === undefined ? {} : { 'nats-server': server.pid }),
    close: async () => {
      for (const cleanup of cleanups.reverse()) await cleanup()
    },
  }
}
