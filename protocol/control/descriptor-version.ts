import { z } from 'zod'
import { ProtocolError } from '../errors'
import { demandOf } from '../roles/room'
import { SpecifierSchema as FullSpecifierSchema } from '../descriptor/specifier-schema'
import { describeIssue } from '../zod-issues'

/**
 * A descriptor's `version` (DESIGN Contract 3, the Control interface): a non-negative integer that
 * every update raises. A descriptor without one is version 0, so the first update may be 1.
 */
export function descriptorVersion (descriptor: unknown): number {
  if (typeof descriptor !== 'object' || descriptor === null) return 0
  const version = (descriptor as { version?: unknown }).version
  return Number.isSafeInteger(version) && (version as number) > 0 ? version as number : 0
}

/** The primary site's id as a descriptor names it, when it does. */
export function primarySiteOf (descriptor: unknown): string | undefined {
  const primary = (descriptor as { primarySite?: { id?: unknown } } | null)?.primarySite
  return typeof primary?.id === 'string' ? primary.id : undefined
}

/** The parts a patch may change: the monitoring specifiers and the resources (paper IV: the Control interface). */
const PatchSchema = z.object({
  monitoring: z.array(z.record(z.string(), z.unknown())).max(256).optional(),
  resources: z.record(z.string(), z.unknown()).optional(),
}).strict()

export type DescriptorPatch = z.infer<typeof PatchSchema>

/** What an update carries: the version it makes, and either a whole descriptor or a patch of one. */
export type DescriptorChange = { version: number } & ({ descriptor: Record<string, unknown> } | { patch: DescriptorPatch })

/**
 * Reads an update's body fields; a malformed one is a bad-request naming the field. The specifiers
 * it brings are checked as the host agent checks them (protocol/descriptor/specifier-schema.ts):
 * one the agent would refuse is refused here, at the first site, before any version moves.
 */
export function readChange (body: Record<string, unknown>): DescriptorChange {
  const version = body.version
  if (!Number.isSafeInteger(version) || (version as number) < 1) throw new ProtocolError('bad-request', 'version must be an integer ≥ 1')
  if ((body.descriptor === undefined) === (body.patch === undefined)) throw new ProtocolError('bad-request', 'give either descriptor or patch')
  if (body.descriptor !== undefined) {
    if (typeof body.descriptor !== 'object' || body.descriptor === null || Array.isArray(body.descriptor)) throw new ProtocolError('bad-request', 'descriptor must be an object')
    checkSpecifiers((body.descriptor as Record<string, unknown>).monitoring, 'descriptor.monitoring')
    return { version: version as number, descriptor: body.descriptor as Record<string, unknown> }
  }
  const patch = PatchSchema.safeParse(body.patch)
  if (!patch.success) {
    const issue = patch.error.issues[0]
    throw new ProtocolError('bad-request', `patch.${issue.path.join('.')}: ${issue.message}`)
  }
  checkSpecifiers(patch.data.monitoring, 'patch.monitoring')
  return { version: version as number, patch: patch.data }
}

/** The specifiers an update brings (none: it keeps those in force), each checked in full; the first problem names its field. */
function checkSpecifiers (monitoring: unknown, field: string): void {
  if (monitoring === undefined) return
  const checked = z.array(FullSpecifierSchema).max(256).safeParse(monitoring)
  if (!checked.success) throw new ProtocolError('bad-request', describeIssue(checked.error.issues[0], field))
}

/** A specifier as far as a site checks it; the host agent checks every field when it loads the descriptor. */
const SpecifierSchema = z.object({ metric: z.string().min(1).max(512) }).passthrough()

/**
 * The descriptor a change makes of `current` (the one the VM's host holds). The result carries the
 * change's version; its id and primary site cannot be changed by an update.
 */
export function applyChange (current: unknown, change: DescriptorChange): Record<string, unknown> {
  const base = typeof current === 'object' && current !== null && !Array.isArray(current) ? current as Record<string, unknown> : {}
  const next: Record<string, unknown> = 'descriptor' in change ? { ...change.descriptor } : { ...base, ...change.patch }
  // A patch's resources change only the fields it names (--vcpus alone keeps the memory).
  if ('patch' in change && change.patch.resources !== undefined && typeof base.resources === 'object' && base.resources !== null) {
    next.resources = { ...base.resources, ...change.patch.resources }
  }
  for (const key of ['id', 'primarySite'] as const) {
    if (base[key] !== undefined && next[key] !== undefined && JSON.stringify(base[key]) !== JSON.stringify(next[key])) {
      throw new ProtocolError('bad-request', `descriptor.${key} cannot be changed by an update`)
    }
    if (next[key] === undefined && base[key] !== undefined) next[key] = base[key]
  }
  next.version = change.version
  const monitoring = z.array(SpecifierSchema).max(256).optional().safeParse(next.monitoring)
  if (!monitoring.success) {
    const issue = monitoring.error.issues[0]
    throw new ProtocolError('bad-request', `descriptor.monitoring.${issue.path.join('.')}: ${issue.message}`)
  }
  demandOf(next) // refuses malformed resources, naming the field
  return next
}
