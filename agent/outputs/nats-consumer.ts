import { jetstream, type JetStreamClient } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { deliverySubject } from '../../protocol/monitoring/nats-subjects'
import type { AgentStore, QueuedDelivery } from '../state/agent-store'
import type { OutboxConsumer } from './outbox-consumer'

const BATCH = 500
/** As for HTTP: a burst of new deliveries shares one round of publishes. */
const LINGER_MS = 5
const PUBLISH_TIMEOUT_MS = 5_000
const MIN_BACKOFF_MS = 200
const MAX_BACKOFF_MS = 30_000
const IDLE_POLL_MS = 1000
const RECONNECT_WAIT_MS = 500

export interface NatsConsumerOptions {
  servers: string[]
  /** The site that runs this host's VMs: deliveries go to `<subjectPrefix>.<site>.<vm>`. */
  site: string
  subjectPrefix: string
}

/**
 * Sends one consumer's outbox to a NATS JetStream stream (issue 7 §4): each delivery is published
 * to its site's and VM's subject with the delivery id as Nats-Msg-Id, so the stream drops a repeat
 * within its duplicate window. A delivery leaves the outbox only once JetStream answered with a
 * PubAck (it is stored, or was already); publishes of a batch are awaited in parallel, the ones
 * without an ack are retried with exponential backoff. While the connection is down nothing is
 * tried: the client reconnects for ever and the outbox keeps everything meanwhile.
 */
export class NatsConsumer implements OutboxConsumer {
  private sending = false
  private lingering = false
  private stopped = false
  private connected = false
  private nc?: NatsConnection
  private js?: JetStreamClient
  private timer?: NodeJS.Timeout
  private connectTimer?: NodeJS.Timeout
  private readonly subjects = new Map<string, string>()
  readonly stats = { sent: 0, failedAttempts: 0 }

  constructor (
    readonly name: string,
    private readonly options: NatsConsumerOptions,
    private readonly store: AgentStore,
    private readonly log: (line: string) => void,
  ) {}

  start (): void {
    void this.connect()
  }

  kick (): void {
    if (!this.sending && !this.lingering) {
      this.lingering = true
      this.schedule(LINGER_MS)
    }
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.connectTimer)
    void this.nc?.close()
  }

  private async connect (): Promise<void> {
    let nc: NatsConnection
    try {
      // Once connected the client reconnects for ever; a first connect that fails is retried here (stop() can end that).
      nc = await connect({
        servers: this.options.servers,
        name: `fedvm-agent ${this.name}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
      })
    } catch (err) {
      this.failed(`cannot connect to ${this.options.servers.join(', ')}: ${(err as Error).message}`)
      if (!this.stopped) this.connectTimer = setTimeout(() => void this.connect(), RECONNECT_WAIT_MS * 2)
      return
    }
    if (this.stopped) {
      await nc.close()
      return
    }
    this.nc = nc
    this.js = jetstream(nc, { timeout: PUBLISH_TIMEOUT_MS })
    this.connected = true
    void this.followStatus(nc)
    void nc.closed().then(() => {
      this.connected = false
      if (!this.stopped) void this.connect()
    })
    this.schedule(0)
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

  private schedule (delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.sendDue(), delayMs)
  }

  private async sendDue (): Promise<void> {
    this.lingering = false
    if (this.sending || this.stopped) return
    this.sending = true
    try {
      while (this.connected && this.js && !this.stopped) {
        const due = this.store.due(this.name, Date.now(), BATCH)
        if (due.length === 0) break
        const js = this.js
        const results = await Promise.allSettled(due.map((d) => js.publish(this.subjectOf(d), d.body, { msgID: d.id, timeout: PUBLISH_TIMEOUT_MS })))
        if (this.stopped) return
        const acked: QueuedDelivery[] = []
        const failed: QueuedDelivery[] = []
        results.forEach((result, i) => {
          if (result.status === 'fulfilled') acked.push(due[i])
          else failed.push(due[i])
        })
        if (acked.length > 0) {
          this.store.ack(acked)
          this.stats.sent += acked.length
        }
        if (failed.length > 0) {
          const reason = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error
          this.failed(`${failed.length} of ${due.length} publishes without a PubAck (${reason.message})`)
          const attempts = Math.max(...failed.map((d) => d.attempts)) + 1
          const backoff = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(attempts, 16))
          this.store.retryLater(failed, Date.now() + backoff * (0.5 + Math.random() / 2))
        }
      }
    } finally {
      this.sending = false
      this.schedule(IDLE_POLL_MS)
    }
  }

  /** The delivery's subject, from the VM named in its body (cached per VM). */
  private subjectOf (queued: QueuedDelivery): string {
    const vm = (JSON.parse(queued.body) as { vm: string }).vm
    let subject = this.subjects.get(vm)
    if (subject === undefined) {
      subject = deliverySubject(this.options.subjectPrefix, this.options.site, vm)
      this.subjects.set(vm, subject)
    }
    return subject
  }

  private failed (reason: string): void {
    if (this.stats.failedAttempts++ % 20 === 0) this.log(`consumer ${this.name}: delivery failed (${reason}); kept in the outbox, retrying with backoff`)
  }
}
