import { readFile } from 'node:fs/promises'
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { deliverySubject, hostDeliverySubject } from '../../protocol/relay/nats-subjects'
import type { AgentStore, QueuedDelivery } from '../state/agent-store'
import { JetStreamPublisher } from './jetstream-publisher'
import type { OutboxConsumer } from './outbox-consumer'
import { OutboxSender, type BatchResult } from './outbox-sender'

const BATCH = 500
/** As for HTTP: sends start at least this far apart; a burst of new deliveries shares one round of publishes. */
const SPACING_MS = 5
const PUBLISH_TIMEOUT_MS = 5_000
const RECONNECT_WAIT_MS = 500

export interface NatsConsumerOptions {
  servers: string[]
  /** The site that runs this host's VMs: deliveries go to `<subjectPrefix>.<site>.<vm>`. */
  site: string
  subjectPrefix: string
  /** This host's id: its subjects are `<subjectPrefix>.<site>.<host>.<vm>`. */
  host?: string
  /** This host's NATS user (an nkey seed file), when the servers require authentication. */
  nkeySeedFile?: string
}

/**
 * Sends one consumer's outbox to a NATS JetStream stream: each delivery is published
 * to its site's and VM's subject with the delivery id as Nats-Msg-Id, so the stream drops a repeat
 * within its duplicate window. A delivery leaves the outbox only once JetStream answered with a
 * PubAck (stored, or already stored); a batch's publishes are awaited in parallel, the ones
 * without an ack are retried with backoff by the outbox sender. While the connection is down
 * nothing is tried: the client reconnects for ever and the outbox keeps everything meanwhile.
 */
export class NatsConsumer implements OutboxConsumer {
  private stopped = false
  private connected = false
  private nc?: NatsConnection
  private publisher?: JetStreamPublisher
  private connectTimer?: NodeJS.Timeout
  private readonly subjects = new Map<string, string>()
  private readonly sender: OutboxSender

  constructor (
    readonly name: string,
    private readonly options: NatsConsumerOptions,
    store: AgentStore,
    private readonly log: (line: string) => void,
  ) {
    this.sender = new OutboxSender({ name, store, log, batch: BATCH, spacingMs: SPACING_MS, send: (due) => this.publish(due), ready: () => this.connected })
  }

  get stats (): OutboxSender['stats'] {
    return this.sender.stats
  }

  start (): void {
    void this.connect()
  }

  kick (): void {
    this.sender.kick()
  }

  stop (): void {
    this.stopped = true
    this.sender.stop()
    clearTimeout(this.connectTimer)
    void this.nc?.close()
  }

  private async connect (): Promise<void> {
    let nc: NatsConnection
    try {
      // Once connected the client reconnects for ever; a first connect that fails is retried here (stop() can end that).
      const seed = this.options.nkeySeedFile === undefined ? undefined : (await readFile(this.options.nkeySeedFile, 'utf8')).trim()
      nc = await connect({
        servers: this.options.servers, name: `fedvm-agent ${this.name}`, maxReconnectAttempts: -1, reconnectTimeWait: RECONNECT_WAIT_MS,
        ...(seed === undefined ? {} : { authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)) }),
      })
    } catch (err) {
      this.sender.failed(`cannot connect to ${this.options.servers.join(', ')}: ${(err as Error).message}`)
      if (!this.stopped) this.connectTimer = setTimeout(() => void this.connect(), RECONNECT_WAIT_MS * 2)
      return
    }
    if (this.stopped) {
      await nc.close()
      return
    }
    this.nc = nc
    this.publisher = new JetStreamPublisher(nc)
    this.connected = true
    void this.followStatus(nc)
    void nc.closed().then(() => {
      this.connected = false
      this.publisher?.close()
      if (!this.stopped) void this.connect()
    })
    this.sender.start()
  }

  private async followStatus (nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false
      } else if (status.type === 'reconnect') {
        this.connected = true
        this.log(`consumer ${this.name}: reconnected to NATS ${nc.getServer()}`)
        this.kick()
      }
    }
  }

  private async publish (due: QueuedDelivery[]): Promise<BatchResult> {
    const outcomes = await this.publisher!.publish(due.map((d) => ({ subject: this.subjectOf(d), id: d.id, body: d.body })), PUBLISH_TIMEOUT_MS)
    const failed = due.filter((_, i) => outcomes[i] !== undefined)
    if (failed.length === 0) return { failed }
    return { failed, reason: `${failed.length} of ${due.length} publishes without a PubAck: ${outcomes.find((o) => o !== undefined)!}` }
  }

  /** The delivery's subject, from its VM (cached per VM); only a row queued before the outbox kept `vm` has its body decoded for it. */
  private subjectOf (queued: QueuedDelivery): string {
    const vm = queued.vm ?? (JSON.parse(queued.body) as { vm: string }).vm
    let subject = this.subjects.get(vm)
    if (subject === undefined) {
      const { subjectPrefix, site, host } = this.options
      subject = host === undefined ? deliverySubject(subjectPrefix, site, vm) : hostDeliverySubject(subjectPrefix, site, host, vm)
      this.subjects.set(vm, subject)
    }
    return subject
  }
}
