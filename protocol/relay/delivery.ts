import { z } from 'zod'
import { isBeyondDouble, isInt64 } from '../exact-json'
import { isSafeFileName } from '../../host/vm-folder/vm-folder'
import { ProtocolError, type RefusedItem } from '../errors'
import { describeIssue } from '../zod-issues'

/**
 * A delivery as the agent makes it (DESIGN.md Contract 3) and as sites relay it: raw ones carry
 * `samples`, processed ones `value` (and `function`), sealed ones `sealed` instead of either. `id` is
 * stable, so a receiver that sees a delivery twice drops the repeat. Declared here for the agent and
 * for every ingest (local HTTP, NATS, the signed cross-site operation): protocol/ may not import agent/.
 */
export interface Delivery<SampleValue = SampleNumber> {
  id: string
  vm: string
  metric: string
  format: 'raw' | 'processed'
  function?: 'min' | 'max' | 'mean' | 'median'
  from: number
  to: number
  samples?: Array<{ ts: number, value: SampleValue }>
  value?: number
  sealed?: string
}

/**
 * A raw sample's value: a KPI integer beyond ±2^53 is a bigint, exact through every hop (written
 * digit for digit, read back with parseExact: protocol/exact-json.ts); every other number a double.
 */
export type SampleNumber = number | bigint

/**
 * A sample value as a number for what stores doubles (Prometheus' /metrics and remote write, rule
 * comparisons): a bigint becomes the nearest double, by nature of those formats; text has none.
 */
export function sampleAsDouble (value: SampleNumber | string): number | undefined {
  if (typeof value === 'bigint') return Number(value)
  return typeof value === 'number' ? value : undefined
}

/** A delivery as the agent makes it. */
export type AgentDelivery = Delivery

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
// parseExact makes a bigint only of an integer a double would round; a KPI integer is 64-bit.
const exactInteger = z.bigint().refine(isInt64, 'must be a 64-bit integer (a KPI INTEGER)').refine(isBeyondDouble, 'must be a bigint only beyond ±2^53')
const time = z.number().int().min(0).max(8_640_000_000_000_000)

// Members in code-unit order: parsed deliveries then come out with their keys already sorted, so
// canonical JSON (signing, verifying at the next hop) need not reorder them.
const DeliverySchema = z.object({
  format: z.enum(['raw', 'processed']),
  from: time,
  function: z.enum(['min', 'max', 'mean', 'median']).optional(),
  id: z.string().min(1).max(512),
  metric: z.string().min(1).max(512),
  samples: z.array(z.object({ ts: time, value: z.union([z.number(), exactInteger]) }).strict()).min(1).max(100_000).optional(),
  sealed: z.string().min(1).regex(BASE64, 'must be base64').optional(),
  to: time,
  value: z.number().optional(),
  // A VM id as the site state keeps it: a plain name of a VM folder.
  vm: z.string().max(128).refine(isSafeFileName, 'must be a VM id (letters, digits, ._+-)'),
}).strict().superRefine((d, ctx) => {
  const payloads = (['samples', 'value', 'sealed'] as const).filter((key) => d[key] !== undefined)
  if (payloads.length !== 1) {
    ctx.addIssue({ code: 'custom', path: payloads.length === 0 ? ['samples'] : [payloads[1]], message: 'exactly one of samples, value or sealed is needed' })
    return
  }
  if (d.format === 'raw' && (d.value !== undefined || d.function !== undefined)) ctx.addIssue({ code: 'custom', path: [d.value !== undefined ? 'value' : 'function'], message: 'a raw delivery carries samples (or sealed), not a processed value' })
  if (d.format === 'processed' && d.samples !== undefined) ctx.addIssue({ code: 'custom', path: ['samples'], message: 'a processed delivery carries value (or sealed), not samples' })
  if (d.format === 'processed' && d.function === undefined) ctx.addIssue({ code: 'custom', path: ['function'], message: 'a processed delivery names its function' })
  if (d.to < d.from) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must not be before from' })
})

const MAX_BATCH = 100_000
/** A refusal lists at most this many deliveries; a sender that resends the rest hears of the next ones then. */
export const MAX_REFUSED_LISTED = 1000

/** The deliveries of a list that are valid (each with its place in the list) and those refused, each named by its field. */
export interface CheckedDeliveries {
  valid: Array<{ index: number, delivery: Delivery }>
  refused: RefusedItem[]
}

/**
 * Checks every delivery of a list (`where` names it in messages, e.g. "deliveries"): each bad one
 * is refused on its own, naming its field (`deliveries[3].value: …`), so a sender can keep the
 * good ones. A list that is not one, or is too long, is refused whole.
 */
export function checkDeliveries (value: unknown, where: string): CheckedDeliveries {
  if (!Array.isArray(value)) throw new ProtocolError('bad-request', `${where} must be a list of deliveries`)
  if (value.length > MAX_BATCH) throw new ProtocolError('request-too-large', `${where} holds ${value.length} deliveries; at most ${MAX_BATCH} at once`)
  const seen = new Set<string>()
  const checked: CheckedDeliveries = { valid: [], refused: [] }
  for (let i = 0; i < value.length; i++) {
    const parsed = DeliverySchema.safeParse(value[i])
    if (!parsed.success) {
      checked.refused.push(refusedDelivery(i, value[i], describeIssue(parsed.error.issues[0], `${where}[${i}]`)))
      continue
    }
    // A batch repeating an id is one delivery (the primary stores each id once).
    if (seen.has(parsed.data.id)) continue
    seen.add(parsed.data.id)
    checked.valid.push({ index: i, delivery: parsed.data as Delivery })
  }
  return checked
}

/** A delivery refused for what it holds (bad-request: sending it again cannot succeed); its id when it has a usable one. */
export function refusedDelivery (index: number, value: unknown, detail: string): RefusedItem {
  const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined
  return { index, ...(typeof id === 'string' && id.length <= 512 ? { id } : {}), code: 'bad-request', retryable: false, detail }
}

/**
 * The one refusal of a batch with refused deliveries: a bad-request whose message is the first
 * one's and which lists each (up to MAX_REFUSED_LISTED). Nothing of the batch is stored.
 */
export function refusedBatch (refused: readonly RefusedItem[]): ProtocolError {
  return new ProtocolError('bad-request', refused[0].detail, { refused: refused.slice(0, MAX_REFUSED_LISTED) })
}

/**
 * Checks a list of deliveries (`where` names it in messages, e.g. "deliveries"). Any bad one
 * refuses the batch (nothing of it is stored): a bad-request naming the first one's field and
 * listing every refused delivery.
 */
export function parseDeliveries (value: unknown, where: string): Delivery[] {
  const { valid, refused } = checkDeliveries(value, where)
  if (refused.length > 0) throw refusedBatch(refused)
  return valid.map((v) => v.delivery)
}
