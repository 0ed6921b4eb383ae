/**
 * The typed parameters (remote_typed_param) the migration procedures take and job statistics
 * return: a field name, then a value tagged with its virTypedParameterType.
 */
import { readTypedValue, type ParamValue } from '../decode-domain-stats'
import { XdrReader, XdrWriter } from './xdr'

/** REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX and REMOTE_DOMAIN_JOB_STATS_MAX. */
const PARAMS_MAX = 64

/** virDomainMigrate parameter names fedvm sets (libvirt-domain.h VIR_MIGRATE_PARAM_*). */
export const MigrateParam = {
  URI: 'migrate_uri',
  DEST_XML: 'destination_xml',
  /** Required by Finish: the name the domain has at the Destination. */
  DEST_NAME: 'destination_name',
  DISKS_URI: 'disks_uri',
  BANDWIDTH: 'bandwidth'
} as const

export type TypedParams = Record<string, ParamValue>

const TYPE_INT = 1
const TYPE_ULLONG = 4
const TYPE_BOOLEAN = 6
const TYPE_STRING = 7

/** Strings as strings, booleans as booleans, integers as unsigned 64-bit (libvirt converts to the type each parameter needs). */
export function writeTypedParams (w: XdrWriter, params: TypedParams): XdrWriter {
  const entries = Object.entries(params)
  w.uint(entries.length)
  for (const [field, value] of entries) {
    w.string(field)
    if (typeof value === 'string') w.int(TYPE_STRING).string(value)
    else if (typeof value === 'boolean') w.int(TYPE_BOOLEAN).int(value ? 1 : 0)
    else if (Number.isInteger(value) && value >= 0) w.int(TYPE_ULLONG).fixedOpaque(uhyper(value))
    else w.int(TYPE_INT).int(value)
  }
  return w
}

export function readTypedParams (r: XdrReader): TypedParams {
  const n = r.count(PARAMS_MAX * 4)
  const out: TypedParams = {}
  for (let i = 0; i < n; i++) {
    const field = r.string()
    out[field] = readTypedValue(r, field)
  }
  return out
}

function uhyper (value: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(value))
  return b
}

