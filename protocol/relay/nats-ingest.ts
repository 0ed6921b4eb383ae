import { jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { readFile } from 'node:fs/promises'
import { ProtocolError } from '../errors'
import { parseExact } from '../exact-json'
import { defaultStreamName, type NatsIngestConfig } from './nats-config'
import { ensureDeliveryStream } from './nats-stream'
import { parseDeliverySubject } from './nats-subjects'
import { backoffMs } from '../backoff'

const RETRY_MS = 1000
const NAK_DELAY = { minMs: 200, maxMs: 30_000, jitter: false }

export interface NatsIngestOptions {
  siteId: string
  config: NatsIngestConfig
  /**
   * MonitoringRelay.accept for the host a subject names (undefined: the subject names no host):
   * resolves once the batch is durably stored, or refuses it (the host does not run the VM).
   */
  accept: (deliveries: readonly unknown[], host: string | undefined) => Promise<{ accepted: number }>
  log: (event: Record<string, unknown>) => void
}

interface Received {
  msg: JsMsg
  delivery: unknown
  host: string | undefined
}

/**
 * The site's side of the NATS bus: a JetStream stream of the site's delivery subjects
 * (work-queue retention: a message stays until the site acknowledged it) and a durable pull
 * consumer with explicit acks. Messages are handed to the relay in batches; each is acknowledged
 * only after accept() resolved, i.e. after the delivery is durably in monitoring.db. A message
 * whose subject does not name its delivery's VM, or that the relay refuses as malformed, is
 * terminated (logged without its content); one the relay cannot take now (unknown VM, shutting
 * down) is redelivered later with backoff, as the HTTP path retries.
 */
export class NatsIngest {
  readonly stats = { accepted: 0, terminated: 0, retried: 0 }
  readonly stream: string
  private stopped = false
  private nc?: NatsConnection
  private jsm?: JetStreamManager
  private messages?: ConsumerMessages
  private buffer: JsMsg[] = []
  private processing?: Promise<void>
  private running?: Promise<void>
  /** Ends the pause between two connection attempts (stop()). */
  private wake?: () => void

  constructor (private readonly options: NatsIngestOptions) {
    this.stream = options.config.stream ?? defaultStreamName(options.siteId)
  }

  start (): void {
    this.running = this.run()
  }

  /** Stops taking messages; the ones received but not yet handed to the relay are given back at once. */
  async stop (): Promise<void> {
    this.stopped = true
    this.wake?.()
    await this.messages?.close()
    await this.processing
    for (const msg of this.buffer.splice(0)) msg.nak()
    await this.nc?.close()
    await this.running
  }

  private async run (): Promise<void> {
    const { config, log } = this.options
    let failures = 0
    while (!this.stopped) {
      let nc: NatsConnection | undefined
      try {
        nc = await connect({
          servers: config.servers,
          ...(config.nkeySeedFile === undefined ? {} : { authenticator: nkeyAuthenticator(new TextEncoder().encode((await readFile(config.nkeySeedFile, 'utf8')).trim())) }),
          name: `fedvm-site ${this.options.siteId}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
        })
        this.nc = nc
        if (this.stopped) {
          await nc.close()
          break
        }
        this.jsm = await jetstreamManager(nc)
        await ensureDeliveryStream(this.jsm, this.stream, this.options.siteId, config)
        const consumer = await jetstream(nc).consumers.get(this.stream, config.durable)
        this.messages = await consumer.consume({
          max_messages: config.batch * 2,
          // A stream or consumer gone (a server that lost its store) is set up again by this loop.
          abort_on_missing_resource: true,
          callback: (msg) => this.received(msg),
        })
        log({ event: 'nats-ingest-started', stream: this.stream, durable: config.durable, server: nc.getServer() })
        failures = 0
        const ended = await Promise.race([this.messages.closed(), nc.closed()])
        if (!this.stopped) log({ event: 'nats-ingest-interrupted', stream: this.stream, error: ended instanceof Error ? ended.message : 'closed' })
      } catch (err) {
        // Logged once per outage, not every second while the server is down.
        if (!this.stopped && failures++ === 0) log({ event: 'nats-ingest-failed', stream: this.stream, error: (err as Error).message, retryMs: RETRY_MS })
      }
      if (this.stopped) break
      await this.messages?.close().catch(() => undefined)
      await nc?.close().catch(() => undefined)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, RETRY_MS)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      this.wake = undefined
    }
  }

  private received (msg: JsMsg): void {
    this.buffer.push(msg)
    if (this.processing === undefined) this.processing = this.drain()
  }

  /** Hands what arrived to the relay, a batch at a time; messages arriving meanwhile make the next batch. */
  private async drain (): Promise<void> {
    try {
      // Let the rest of a burst that is already in the socket's buffer join the first batch.
      await new Promise((resolve) => setImmediate(resolve))
      while (this.buffer.length > 0 && !this.stopped) await this.handle(this.buffer.splice(0, this.options.config.batch))
    } finally {
      this.processing = undefined
    }
  }

  private async handle (msgs: JsMsg[]): Promise<void> {
    const byHost = new Map<string | undefined, Received[]>()
    for (const msg of msgs) {
      const received = this.decode(msg)
      if (received === undefined) continue
      const list = byHost.get(received.host)
      if (list === undefined) byHost.set(received.host, [received])
      else list.push(received)
    }
    for (const batch of byHost.values()) await this.handleBatch(batch)
  }

  private async handleBatch (batch: Received[]): Promise<void> {
    try {
      await this.options.accept(batch.map((r) => r.delivery), batch[0].host)
      for (const r of batch) r.msg.ack()
      this.stats.accepted += batch.length
    } catch (err) {
      // The relay refuses a batch whole: find the message(s) it refuses, take the others.
      if (batch.length > 1 && err instanceof ProtocolError && !err.retryable) {
        for (const r of batch) await this.handleOne(r)
      } else {
        for (const r of batch) this.retryLater(r.msg, err)
      }
    }
  }

  private async handleOne (r: Received): Promise<void> {
    try {
      await this.options.accept([r.delivery], r.host)
      r.msg.ack()
      this.stats.accepted++
    } catch (err) {
      if (err instanceof ProtocolError && err.code === 'bad-request') this.terminate(r.msg, err.message)
      else this.retryLater(r.msg, err)
    }
  }

  /** One delivery (a JSON object) per message, under the subject of its own VM (and host). */
  private decode (msg: JsMsg): Received | undefined {
    let delivery: unknown
    try {
      delivery = parseExact(msg.string())
    } catch {
      this.terminate(msg, 'not JSON')
      return undefined
    }
    if (typeof delivery !== 'object' || delivery === null || Array.isArray(delivery)) {
      this.terminate(msg, 'not one delivery object')
      return undefined
    }
    const subject = parseDeliverySubject(this.options.config.subjectPrefix, this.options.siteId, msg.subject)
    if (subject === undefined || (delivery as { vm?: unknown }).vm !== subject.vm) {
      this.terminate(msg, 'the delivery\'s vm is not the VM its subject names')
      return undefined
    }
    return { msg, delivery, host: subject.host }
  }

  private terminate (msg: JsMsg, reason: string): void {
    msg.term(reason)
    this.stats.terminated++
    this.options.log({ event: 'nats-delivery-refused', subject: msg.subject, seq: msg.seq, reason })
    // A work-queue stream keeps a terminated message (nats-server 2.9): remove it, it can never be taken.
    this.jsm?.streams.deleteMessage(this.stream, msg.seq, false).catch((err: Error) => {
      this.options.log({ event: 'nats-delete-failed', seq: msg.seq, error: err.message })
    })
  }

  private retryLater (msg: JsMsg, err: unknown): void {
    const delay = backoffMs(msg.info.deliveryCount, NAK_DELAY)
    msg.nak(delay)
    if (this.stats.retried++ % 100 === 0) {
      this.options.log({ event: 'nats-delivery-retry', subject: msg.subject, seq: msg.seq, code: err instanceof ProtocolError ? err.code : undefined, error: (err as Error).message, delayMs: delay })
    }
  }
}
