import { z } from 'zod'
import { AgentError } from '../errors'
import { describeIssues } from '../../protocol/zod-issues'
import { parseKpiMetric, type KpiTarget } from '../../protocol/descriptor/kpi-metric'
import { SpecifierSchema } from '../../protocol/descriptor/specifier-schema'

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/

/** The VM descriptor's parts the monitoring side reads; other parts (placement, resources) pass through. */
export const DescriptorSchema = z.object({
  id: z.string().min(1),
  primarySite: z.object({
    id: z.string().min(1),
    /** The primary site's sealing public key (X25519, base64): `encrypt` seals for it. */
    publicKey: z.string().regex(BASE64_KEY, 'must be a base64 32-byte key'),
  }).passthrough(),
  monitoring: z.array(SpecifierSchema).default([]),
}).passthrough()

export type VmDescriptor = z.infer<typeof DescriptorSchema>

/** Validates a descriptor; the error names the field (`monitoring[2].function: …`). */
export function parseDescriptor (json: unknown, source: string): VmDescriptor {
  const result = DescriptorSchema.safeParse(json)
  if (!result.success) throw new AgentError('DESCRIPTOR_INVALID', `${source}: ${describeIssues(result.error)}`)
  return result.data
}

/** A valid specifier's KPI (table and column; no column for an encrypted KPI), or undefined for a hypervisor data point. */
export function kpiTarget (metric: string): KpiTarget | undefined {
  if (!metric.startsWith('kpi:')) return undefined
  const target = parseKpiMetric(metric)
  if ('error' in target) throw new Error(`not a valid KPI metric (descriptors are validated at load): ${target.error}`)
  return target
}
