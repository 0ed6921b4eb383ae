import { z } from 'zod'
import { ProtocolError } from '../errors'
import { parseManifest, type Manifest } from '../proxy/manifest'
import { describeIssue } from '../zod-issues'
import { MigrationProgressSchema } from './migration-progress'

/**
 * What partners answer to each operation, checked before anything is done with it: a signature
 * proves who answered, not that the answer is well formed.
 */

/** A manifest as the proxies check it (proxy/manifest.ts), for the VM it names. */
const ManifestSchema = z.unknown().transform((value, ctx): Manifest => {
  try {
    return parseManifest(value, String((value as { vmId?: unknown } | null)?.vmId))
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/**
 * An answer to a Migration request: the handle to pass back in Initiate transfer (a destination token,
 * or an Intermediary's route to one), and what the Source needs to bind its token to the destination
 * proxy and seal ⟨suri, stok⟩ for it. No address: location unawareness.
 */
export const OfferSchema = z.object({
  ref: z.string(),
  sealKey: z.string(),
  tlsFingerprint: z.string(),
  /** How many delegations away the destination is (0: the answering site's own host). */
  depth: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
  /** How many more VMs like this one that host takes (its free VM slots, bounded by free memory and vCPUs). */
  free: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
  /** The offered host takes a running VM live (a libvirt host). */
  live: z.boolean().optional(),
})
export type Offer = z.infer<typeof OfferSchema>

/** Offers that are not well formed are dropped one by one: a partner's other offers still count. */
export const OffersSchema = z.object({ offers: z.array(z.unknown()).catch([]) }).catch({ offers: [] }).transform(({ offers }): Offer[] =>
  offers.flatMap((offer) => {
    const parsed = OfferSchema.safeParse(offer)
    return parsed.success ? [parsed.data] : []
  }))

/** Forced migration, mode "prepare": the Source's token, and ⟨suri, stok⟩ sealed for the destination. */
export const PreparedSourceSchema = z.object({
  /** stok: opaque; the Controller passes it back in Transfer verification. */
  token: z.string(),
  /** ⟨suri, stok⟩ sealed for the destination site. */
  ticket: z.string(),
  expiresAt: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
  /** The Source began a live migration (the VM keeps running): the Controller takes the live path. */
  live: z.boolean().optional(),
})
export type PreparedSource = z.infer<typeof PreparedSourceSchema>

/** Initiate transfer: dstat, and what this attempt cost. */
export const TransferStatusSchema = z.object({
  status: ManifestSchema,
  bytes: count,
  fetchedBytes: count,
  reusedBytes: count,
})
export type TransferStatus = z.infer<typeof TransferStatusSchema>

/** A live migration's status at one end (host/libvirt/live-status.ts): what its own libvirtd says moved. */
export const LiveStatusSchema = z.object({
  uuid: z.string().max(64),
  disks: z.array(z.object({ name: z.string().max(255), bytes: count })).max(256),
  job: z.enum(['completed', 'incomplete']),
})

/** Transfer verification: sstat; verified when it equals dstat (the Source still holds the VM until the decision reaches it). */
export const VerificationAnswerSchema = z.object({
  state: z.enum(['verified', 'pending']),
  status: z.union([LiveStatusSchema, ManifestSchema]),
})
export type VerificationAnswer = z.infer<typeof VerificationAnswerSchema>

/** A libvirt migration cookie as it crosses sites: base64, its host name and host UUID neutralised. */
const cookie = z.string().max(65536)

/** live-prepare (Controller → Destination): Prepare's cookie, for the Source's Perform. */
export const LivePreparedSchema = z.object({ cookie })
export type LivePrepared = z.infer<typeof LivePreparedSchema>

/** live-perform (Controller → Source): Perform's cookie, for the Destination's Finish; libvirt's downtime when it said. */
export const LivePerformedSchema = z.object({ cookie, downtimeMs: count.optional() })
export type LivePerformed = z.infer<typeof LivePerformedSchema>

/** live-finish (Controller → Destination): dstat, and Finish's cookie for the Source's Confirm. */
export const LiveFinishedSchema = z.object({ status: LiveStatusSchema, cookie })
export type LiveFinished = z.infer<typeof LiveFinishedSchema>

export const CancelAnswerSchema = z.object({ state: z.literal('cancelled') })
export type CancelAnswer = z.infer<typeof CancelAnswerSchema>

/** transfer-confirm (Controller → Source): the source copy is released. */
export const ConfirmAnswerSchema = z.object({ state: z.literal('confirmed') })
export type ConfirmAnswer = z.infer<typeof ConfirmAnswerSchema>

/** transfer-commit (Controller → Destination): the VM is the Destination's and runs there. */
export const CommitAnswerSchema = z.object({ state: z.literal('committed') })
export type CommitAnswer = z.infer<typeof CommitAnswerSchema>

/** transfer-abort (Controller → Destination): what was received is gone. */
export const AbortAnswerSchema = z.object({ state: z.literal('aborted') })
export type AbortAnswer = z.infer<typeof AbortAnswerSchema>

/** migration-outcome (a side in doubt → up the chain to the Controller): its decision, or pending. */
export const OutcomeAnswerSchema = z.object({ decision: z.enum(['commit', 'abort', 'pending']) })
export type OutcomeAnswer = z.infer<typeof OutcomeAnswerSchema>

/** Forced migration, mode "away": what the site further up did, passed on as it came. */
export const AwayAnswerSchema = z.unknown()

/** migration-progress (Controller → either end): the newest figures, or null where no data of the VM moves now. */
export const ProgressAnswerSchema = z.object({ progress: MigrationProgressSchema.nullable() })
export type ProgressAnswer = z.infer<typeof ProgressAnswerSchema>

/** A partner's answer checked against its schema; a malformed one is bad-response naming the field. */
export function parseAnswer<T> (schema: z.ZodType<T>, value: unknown, from: string, op: string): T {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  throw new ProtocolError('bad-response', `${from} answered ${op} with a malformed answer: ${describeIssue(parsed.error.issues[0])}`)
}
