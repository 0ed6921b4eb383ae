import { createHash } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import ms from 'ms'
import { readHostSecretKey } from '../../protocol/crypto/host-key'
import { readLimited } from '../../protocol/http/read-body'
import { signIngestRequest } from '../../protocol/relay/host-signature'
import type { AgentStore, QueuedDelivery } from '../state/agent-store'
import type { OutboxConsumer } from './outbox-consumer'
import { OutboxSender, type BatchResult } from './outbox-sender'
import { judgeRefusal, UNPLACED_CODES, type Refusal } from './refusal'
import { DEFAULT_UNAUTHENTICATED_AFTER_MS, DEFAULT_UNPLACED_AFTER_MS, type DeadLetterReason } from '../state/dead-letters'

const BATCH = 500
/**
 * Sends start at least this far apart: a delivery queued while idle leaves at once, and under load
 * each POST takes what queued meanwhile. A POST costs the agent far more CPU than queueing a
 * delivery does; at most 100 POSTs a second keeps that cost flat as the row rate grows.
 */
const SPACING_MS = 10
const REQUEST_TIMEOUT_MS = 10_000

/** A batch's outcome as its parts are sent. */
interface PartResult {
  failed: QueuedDelivery[]
  refused: Array<NonNullable<BatchResult['refused']>[number]>
  reason?: string
}

/** While the site refuses this host's signature, it is said in the log at most this often (and when it stops). */
const SIGNATURE_LOG_EVERY_MS = 10 * 60_000

/** How long a consumer retries deliveries the site refuses, before it sets them aside (agent config's deadLetters). */
export interface RetryBounds {
  /** Refused for where its VM is (403 not-permitted, 404 unknown-vm), counted from when the delivery was queued. */
  unplacedAfterMs: number
  /** Refused for this host's signature (401), counted from when the delivery was queued. */
  unauthenticatedAfterMs: number
}

/** The site refusing this host's signature, as /metrics shows it. */
export interface SignatureRefusals {
  /** POSTs answered 401, per the problem's code (`unknown-sender`, `bad-signature`, `stale-timestamp`). */
  readonly counts: ReadonlyMap<string, number>
  /** True while the latest answer was a 401. */
  readonly refusedNow: boolean
}

/** The most answer body read from a refusal (a problem document listing up to 1000 refused deliveries fits). */
const MAX_PROBLEM_BYTES = 1024 * 1024

/**
 * Sends one consumer's outbox: POSTs deliveries as JSON (one object, or an array when a backlog
 * built up) with an Idempotency-Key; the outbox sender removes them only after a 2xx and retries
 * the rest with exponential backoff. So a receiver sees each delivery at least once; every
 * delivery carries its own `id` for dropping repeats. A refusal for good (refusal.ts) sets the
 * refused deliveries aside and sends the others again at once: those the receiver's problem
 * document lists, else, splitting the batch in halves, the single deliveries it still refuses.
 * Deliveries it lists as refused for now are retried with backoff, and do not hold back the others.
 */
export class HttpConsumer implements OutboxConsumer {
  private readonly target: URL
  private readonly agent: HttpAgent
  private readonly sender: OutboxSender
  /** The host key, read once at the first send (a missing file fails sends, and is named in the reason). */
  private secretKey?: Promise<Uint8Array>
  private readonly refusals = new Map<string, number>()
  private refusedNow = false
  private refusalLoggedAt = Number.NEGATIVE_INFINITY

  constructor (
    readonly name: string,
    url: string,
    store: AgentStore,
    private readonly log: (line: string) => void,
    /** Signs each batch as this host (protocol/relay/host-signature.ts). */
    private readonly signAs?: { host: string, keyFile: string },
    /** A delivery refused for these reasons, queued longer ago than its bound, is set aside instead of retried (read at each refusal: a reload changes them in place). */
    private readonly bounds: RetryBounds = { unplacedAfterMs: DEFAULT_UNPLACED_AFTER_MS, unauthenticatedAfterMs: DEFAULT_UNAUTHENTICATED_AFTER_MS },
  ) {
    this.target = new URL(url)
    this.agent = this.target.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true })
    this.sender = new OutboxSender({ name, store, log, batch: BATCH, spacingMs: SPACING_MS, send: (due) => this.send(due) })
  }

  get stats (): OutboxSender['stats'] {
    return this.sender.stats
  }

  get signature (): SignatureRefusals {
    return { counts: this.refusals, refusedNow: this.refusedNow }
  }

  start (): void {
    this.sender.start()
  }

  kick (): void {
    this.sender.kick()
  }

  stop (): void {
    this.sender.stop()
    this.agent.destroy()
  }

  private async send (due: QueuedDelivery[]): Promise<BatchResult> {
    const result: PartResult = { failed: [], refused: [] }
    await this.sendPart(due, result)
    return result
  }

  /**
   * Sends `part`; adds what failed (to retry) and what was refused for good to `result`. Resolves
   * to 'unanswered' when the receiver refused to take anything now (what was left of `part` failed).
   */
  private async sendPart (part: readonly QueuedDelivery[], result: PartResult): Promise<'done' | 'unanswered'> {
    let rest = part
    while (rest.length > 0) {
      const body = rest.length === 1 ? rest[0].body : `[${rest.map((d) => d.body).join(',')}]`
      const answer = await this.post(rest.map((d) => d.id), body)
      if (answer === undefined) {
        this.heardSignature(undefined)
        return 'done'
      }
      const verdict = typeof answer === 'string' ? { kind: 'retry' as const, reason: answer } : judgeRefusal(answer, rest.length)
      // Another 4xx comes from past the site's signature check; no answer, or a 5xx (a proxy in front, a restart), says nothing about it.
      if (typeof answer !== 'string' && answer.status >= 400 && answer.status < 500) this.heardSignature(verdict.kind === 'unauthenticated' ? verdict.reason : undefined)
      if (verdict.kind === 'unauthenticated') {
        this.unauthenticated(rest, verdict.reason, result)
        return 'unanswered'
      }
      if (verdict.kind === 'retry') {
        result.failed.push(...rest)
        result.reason = verdict.reason
        return 'unanswered'
      }
      if (verdict.kind === 'refused-batch' && rest.length === 1) {
        result.refused.push({ delivery: rest[0], reason: verdict.reason })
        return 'done'
      }
      if (verdict.kind === 'refused-batch') {
        const half = Math.ceil(rest.length / 2)
        // The first half unanswered (the receiver went away): so is the second.
        if (await this.sendPart(rest.slice(0, half), result) === 'unanswered') {
          result.failed.push(...rest.slice(half))
          return 'unanswered'
        }
        return this.sendPart(rest.slice(half), result)
      }
      const oldest = Date.now() - this.bounds.unplacedAfterMs
      for (const { index, reason, later } of verdict.items) {
        // Refused for now for longer than a site remembers a VM that left: it will not be placed here again.
        const queuedAt = rest[index].queuedAt
        if (!later || (UNPLACED_CODES.has(reason.code) && queuedAt !== null && queuedAt < oldest)) result.refused.push({ delivery: rest[index], reason })
        else {
          result.failed.push(rest[index])
          result.reason = `HTTP ${reason.status} ${reason.code}: ${reason.detail}`
        }
      }
      const named = new Set(verdict.items.map((item) => item.index))
      rest = rest.filter((_, i) => !named.has(i))
    }
    return 'done'
  }

  /**
   * The site refuses this host's signature for the whole batch: deliveries queued longer ago than
   * unauthenticatedAfterMs are set aside (the operator requeues them once the site has the key),
   * the others retried with backoff.
   */
  private unauthenticated (part: readonly QueuedDelivery[], reason: DeadLetterReason, result: PartResult): void {
    const oldest = Date.now() - this.bounds.unauthenticatedAfterMs
    for (const d of part) {
      if (d.queuedAt !== null && d.queuedAt < oldest) result.refused.push({ delivery: d, reason })
      else result.failed.push(d)
    }
    result.reason = `HTTP 401 ${reason.code}: ${reason.detail}`
  }

  /**
   * Counts a 401 (`refused`) and says so in the log when the site starts refusing this host's
   * signature, then at most every SIGNATURE_LOG_EVERY_MS while it goes on; a 2xx or another 4xx ends it.
   */
  private heardSignature (refused: DeadLetterReason | undefined): void {
    if (refused === undefined) {
      if (this.refusedNow) this.log(`consumer ${this.name}: the site accepts this host's signature again`)
      this.refusedNow = false
      return
    }
    const { code, detail } = refused
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1)
    const now = Date.now()
    if (!this.refusedNow || now - this.refusalLoggedAt >= SIGNATURE_LOG_EVERY_MS) {
      const as = this.signAs === undefined ? 'unsigned batches' : `the signature of host ${this.signAs.host}`
      this.log(`consumer ${this.name}: the site refuses ${as} (HTTP 401 ${code}: ${detail}); deliveries stay in the outbox and are retried, each set aside ${ms(this.bounds.unauthenticatedAfterMs)} after it was queued (deadLetters.unauthenticatedAfterMs); add this host's public key (fedvm host-key) to the site's hosts[]`)
      this.refusalLoggedAt = now
    }
    this.refusedNow = true
  }

  /**
   * node:http with keep-alive: several times cheaper per request than fetch here. Resolves to
   * undefined once acknowledged (2xx), to the receiver's refusal (its status and problem
   * document), or to why no answer came.
   */
  private async post (ids: string[], body: string): Promise<Refusal | string | undefined> {
    const key = ids.length === 1 ? ids[0] : createHash('sha256').update(ids.join('\n')).digest('base64url')
    const send = this.target.protocol === 'https:' ? httpsRequest : httpRequest
    let signature: Record<string, string> = {}
    if (this.signAs !== undefined) {
      try {
        this.secretKey ??= readHostSecretKey(this.signAs.keyFile)
        signature = await signIngestRequest(this.target.pathname, this.signAs.host, await this.secretKey, Buffer.from(body))
      } catch (err) {
        this.secretKey = undefined
        return `cannot sign as host ${this.signAs.host}: ${(err as Error).message}`
      }
    }
    return new Promise((resolve) => {
      const req = send(this.target, {
        method: 'POST',
        agent: this.agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': key, ...signature },
      }, (res) => {
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) {
          res.resume()
          res.on('end', () => resolve(undefined))
        } else {
          // A longer body is not read on (its connection goes): the status alone decides.
          const tooLarge = new Error(`the refusal's body exceeds ${MAX_PROBLEM_BYTES} bytes`)
          readLimited(res, MAX_PROBLEM_BYTES, () => tooLarge).then(
            (body) => resolve({ status, problem: problemOf(res.headers['content-type'], body) }),
            (err) => resolve(err === tooLarge ? { status } : (err as Error).message))
        }
        res.on('error', (err) => resolve(err.message))
      })
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
      req.on('error', (err) => resolve(err.message))
      req.end(body)
    })
  }
}

/** The answer's problem document (RFC 9457), when it is JSON; a refusal without one is judged by its status alone. */
function problemOf (contentType: string | undefined, body: Buffer): unknown {
  if (contentType === undefined || !/json/i.test(contentType)) return undefined
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    // Not a problem document (a proxy's error page cut short): the status alone decides.
    return undefined
  }
}
