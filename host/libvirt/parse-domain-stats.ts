/**
 * Pure: turns libvirt's bulk statistics (flat "group.index.field" parameters) into typed
 * DomainStats (see domain-stats-builder.ts for the meaning of each field). Units stay libvirt's
 * (ns, KiB, bytes).
 */
import type { DomainStats } from '../hypervisor'
import { walkDomainStatsReply, type DomainStatsSink, type RawDomainStats } from './decode-domain-stats'
import { DomainStatsBuilder } from './domain-stats-builder'

/** One raw record (from the RPC reply or from `virsh domstats --raw`). */
export function parseDomainStats (raw: RawDomainStats): DomainStats {
  const b = new DomainStatsBuilder(raw.name, raw.uuid)
  for (const [key, value] of raw.params) b.set(key, value)
  return b.finish()
}

const TYPED: DomainStatsSink<DomainStatsBuilder, DomainStats> = {
  begin: (name, uuid) => new DomainStatsBuilder(name, uuid),
  param: (b, field, value) => { b.set(field, value) },
  end: b => b.finish()
}

/** A whole reply body, decoded straight into typed stats (one pass, no raw records in between). */
export function parseDomainStatsReply (body: Buffer): DomainStats[] {
  return walkDomainStatsReply(body, TYPED)
}
