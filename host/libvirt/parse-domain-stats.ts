/**
 * Pure: a whole CONNECT_GET_ALL_DOMAIN_STATS reply body decoded straight into typed DomainStats in
 * one pass, no raw records in between (see domain-stats-builder.ts for the meaning of each field).
 * Units stay libvirt's (ns, KiB, bytes).
 */
import type { DomainStats } from '../hypervisor'
import { walkDomainStatsReply, type DomainStatsSink } from './decode-domain-stats'
import { DomainStatsBuilder } from './domain-stats-builder'

const TYPED: DomainStatsSink<DomainStatsBuilder, DomainStats> = {
  begin: (name, uuid) => new DomainStatsBuilder(name, uuid),
  param: (b, field, value) => { b.set(field, value) },
  end: b => b.finish()
}

export function parseDomainStatsReply (body: Buffer): DomainStats[] {
  return walkDomainStatsReply(body, TYPED)
}
