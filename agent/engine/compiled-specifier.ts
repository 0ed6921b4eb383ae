import { createHash } from 'node:crypto'
import { kpiTarget } from '../descriptor/vm-descriptor'
import type { Specifier } from '../../protocol/descriptor/specifier-schema'

/** A specifier ready to run: what it reads, and a stable key naming its window in the agent store. */
export interface CompiledSpecifier {
  readonly key: string
  readonly spec: Specifier
  /** A KPI (table and column; no column for an encrypted KPI), or a hypervisor data point. */
  readonly kpi?: { table: string, column?: string }
  readonly dataPoint?: string
}

/** The key changes when the specifier does, so a changed specifier starts a fresh window. */
export function compileSpecifier (spec: Specifier): CompiledSpecifier {
  const key = createHash('sha256').update(JSON.stringify(spec)).digest('base64url').slice(0, 16)
  const kpi = kpiTarget(spec.metric)
  return kpi ? { key, spec, kpi } : { key, spec, dataPoint: spec.metric }
}
