import { ProtocolError } from '../errors'
import type { Capacity, Demand } from '../../host/vm-folder/vm-host'

/**
 * The descriptor's `resources: { memoryMiB, vcpus }` (DESIGN Contract 3): what the VM needs of a host.
 * Missing or empty: nothing is checked but the host's VM count. Malformed: refused, naming the field.
 */
export function demandOf (descriptor: unknown): Demand {
  if (typeof descriptor !== 'object' || descriptor === null) return {}
  const resources = (descriptor as { resources?: unknown }).resources
  if (resources === undefined) return {}
  if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) {
    throw new ProtocolError('bad-request', 'descriptor.resources must be an object')
  }
  const demand: Demand = {}
  for (const key of ['memoryMiB', 'vcpus'] as const) {
    const value = (resources as Record<string, unknown>)[key]
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || (value as number) < 0) throw new ProtocolError('bad-request', `descriptor.resources.${key} must be an integer ≥ 0`)
    demand[key] = value as number
  }
  return demand
}

/** A descriptor that states the demand: the given one when it already does, else a copy with `resources` added. */
export function withDemand (descriptor: unknown, demand: Demand | undefined): unknown {
  if (demand === undefined || Object.keys(demand).length === 0) return descriptor
  const base = typeof descriptor === 'object' && descriptor !== null && !Array.isArray(descriptor) ? descriptor as Record<string, unknown> : {}
  if (base.resources !== undefined) return descriptor
  return { ...base, resources: demand }
}

/**
 * How many more VMs of this demand the host takes (0: none): its free VM slots, bounded by free
 * memory and vCPUs where the host counts them. Offers carry it as `free`, so the Controller's
 * "more room" ranks in units of this VM.
 */
export function vmsThatFit (capacity: Capacity, demand: Demand): number {
  let fit = Math.max(0, capacity.max - capacity.used)
  if (capacity.free !== undefined) {
    if (demand.memoryMiB !== undefined && demand.memoryMiB > 0) fit = Math.min(fit, Math.floor(capacity.free.memoryMiB / demand.memoryMiB))
    if (demand.vcpus !== undefined && demand.vcpus > 0) fit = Math.min(fit, Math.floor(capacity.free.vcpus / demand.vcpus))
  }
  return Math.max(0, fit)
}
