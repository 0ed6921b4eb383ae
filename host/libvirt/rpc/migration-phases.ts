/**
 * libvirt's managed migration as its five phases (Begin, Prepare, Perform, Finish, Confirm: the
 * `*3_PARAMS` procedures of remote_protocol.x), each a function of one side's own libvirtd. The
 * cookie each phase returns is the only state the other side needs; the caller carries it.
 *
 * Each side keeps one connection for the whole migration: libvirt ties the migration job to the
 * connection that began it (Begin on the Source, Prepare on the Destination) and cleans it up when
 * that connection closes, so a dead caller never leaves a job half done.
 */
import type { DomainRef } from '../../hypervisor'
import { readDomain, writeDomain } from './remote-types'
import type { CallOptions, RpcConnection } from './rpc-connection'
import { readTypedParams, writeTypedParams, type TypedParams } from './migration-params'
import { XdrReader, XdrWriter } from './xdr'
import { DomainTimeProc, encodeLookupByName } from './domain-time'

/** remote_protocol.x procedure numbers of the migration phases and the job calls around them. */
export const MigrationProc = {
  DOMAIN_ABORT_JOB: 164,
  DOMAIN_MIGRATE_SET_MAX_DOWNTIME: 166,
  DOMAIN_GET_JOB_STATS: 298,
  DOMAIN_MIGRATE_BEGIN3_PARAMS: 302,
  DOMAIN_MIGRATE_PREPARE3_PARAMS: 303,
  DOMAIN_MIGRATE_PERFORM3_PARAMS: 305,
  DOMAIN_MIGRATE_FINISH3_PARAMS: 306,
  DOMAIN_MIGRATE_CONFIRM3_PARAMS: 307
} as const

/** virDomainMigrateFlags (libvirt-domain.h). */
export const MigrateFlag = {
  LIVE: 1 << 0,
  PERSIST_DEST: 1 << 3,
  UNDEFINE_SOURCE: 1 << 4,
  NON_SHARED_DISK: 1 << 6,
  CHANGE_PROTECTION: 1 << 8,
  ABORT_ON_ERROR: 1 << 12
} as const

/**
 * A live migration with its disks copied (`virsh migrate --live --copy-storage-all --persistent
 * --undefinesource`), the domain locked against changes from Begin to Confirm.
 */
export const LIVE_COPY_ALL = MigrateFlag.LIVE | MigrateFlag.PERSIST_DEST | MigrateFlag.UNDEFINE_SOURCE |
  MigrateFlag.NON_SHARED_DISK | MigrateFlag.CHANGE_PROTECTION | MigrateFlag.ABORT_ON_ERROR

/** What the Destination's phases are given: libvirt's client drops the Source-only flags the same way. */
export function destinationFlags (flags: number): number {
  return flags & ~MigrateFlag.ABORT_ON_ERROR
}

/** REMOTE_MIGRATE_COOKIE_MAX. */
const COOKIE_MAX = 4194304

function writeCookie (w: XdrWriter, cookie: Buffer): XdrWriter {
  return w.uint(cookie.length).fixedOpaque(cookie)
}

function readCookie (r: XdrReader): Buffer {
  const n = r.count(COOKIE_MAX)
  return Buffer.from(r.fixedOpaque(n))
}

export async function lookupDomain (conn: RpcConnection, name: string, options: CallOptions = {}): Promise<DomainRef> {
  return readDomain(new XdrReader(await conn.call(DomainTimeProc.DOMAIN_LOOKUP_BY_NAME, encodeLookupByName(name), options)))
}

/** Begin (Source): the domain's migratable XML and the Source's first cookie. */
export async function beginMigration (conn: RpcConnection, dom: DomainRef, params: TypedParams, flags: number, options: CallOptions = {}): Promise<{ cookie: Buffer, xml: string }> {
  const body = writeTypedParams(writeDomain(new XdrWriter(), dom), params).uint(flags).toBuffer()
  const r = new XdrReader(await conn.call(MigrationProc.DOMAIN_MIGRATE_BEGIN3_PARAMS, body, options))
  const cookie = readCookie(r)
  return { cookie, xml: r.string() }
}

/** Prepare (Destination): starts the incoming QEMU (listening on the migrate URI) and its NBD server. */
export async function prepareMigration (conn: RpcConnection, params: TypedParams, cookie: Buffer, flags: number, options: CallOptions = {}): Promise<{ cookie: Buffer, uri: string | null }> {
  const body = writeCookie(writeTypedParams(new XdrWriter(), params), cookie).uint(flags).toBuffer()
  const r = new XdrReader(await conn.call(MigrationProc.DOMAIN_MIGRATE_PREPARE3_PARAMS, body, options))
  const out = readCookie(r)
  return { cookie: out, uri: r.optionalString() }
}

/** Perform (Source): copies disks and memory, pauses the guest for the switchover; answers when QEMU finished. */
export async function performMigration (conn: RpcConnection, dom: DomainRef, params: TypedParams, cookie: Buffer, flags: number, options: CallOptions = {}): Promise<Buffer> {
  const body = writeCookie(writeTypedParams(writeDomain(new XdrWriter(), dom).optionalString(null), params), cookie).uint(flags).toBuffer()
  return readCookie(new XdrReader(await conn.call(MigrationProc.DOMAIN_MIGRATE_PERFORM3_PARAMS, body, options)))
}

/**
 * Finish (Destination): `cancelled` when Perform failed (the incoming domain is killed); otherwise
 * the domain is resumed here and made persistent. Fails when it cannot run here.
 */
export async function finishMigration (conn: RpcConnection, params: TypedParams, cookie: Buffer, flags: number, cancelled: boolean, options: CallOptions = {}): Promise<{ dom: DomainRef, cookie: Buffer }> {
  const body = writeCookie(writeTypedParams(new XdrWriter(), params), cookie).uint(flags).int(cancelled ? 1 : 0).toBuffer()
  const r = new XdrReader(await conn.call(MigrationProc.DOMAIN_MIGRATE_FINISH3_PARAMS, body, options))
  const dom = readDomain(r)
  return { dom, cookie: readCookie(r) }
}

/**
 * Confirm (Source): `cancelled` false after the Destination's Finish succeeded (the domain is
 * killed and undefined here), true otherwise (the domain resumes here).
 */
export async function confirmMigration (conn: RpcConnection, dom: DomainRef, params: TypedParams, cookie: Buffer, flags: number, cancelled: boolean, options: CallOptions = {}): Promise<void> {
  const body = writeCookie(writeTypedParams(writeDomain(new XdrWriter(), dom), params), cookie).uint(flags).int(cancelled ? 1 : 0).toBuffer()
  await conn.call(MigrationProc.DOMAIN_MIGRATE_CONFIRM3_PARAMS, body, options)
}

/** VIR_DOMAIN_JOB_STATS_COMPLETED: the statistics of the last completed job instead of the running one. */
export const JOB_STATS_COMPLETED = 1
/**
 * VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED: reading the completed job's statistics leaves them in place
 * (libvirt clears them on a read without it, and the host's own `virsh domjobinfo --completed`
 * then finds nothing).
 */
export const JOB_STATS_KEEP_COMPLETED = 2

/** virDomainGetJobStats: the job type (0 none, 1 bounded, 2 unbounded, 3 completed, 4 failed, 5 cancelled) and its typed statistics. */
export async function jobStats (conn: RpcConnection, dom: DomainRef, flags = 0, options: CallOptions = {}): Promise<{ type: number, stats: TypedParams }> {
  const r = new XdrReader(await conn.call(MigrationProc.DOMAIN_GET_JOB_STATS, writeDomain(new XdrWriter(), dom).uint(flags).toBuffer(), options))
  const type = r.int()
  return { type, stats: readTypedParams(r) }
}

/** virDomainAbortJob: a running migration stops and the domain keeps running at the Source. */
export async function abortJob (conn: RpcConnection, dom: DomainRef, options: CallOptions = {}): Promise<void> {
  await conn.call(MigrationProc.DOMAIN_ABORT_JOB, writeDomain(new XdrWriter(), dom).toBuffer(), options)
}

/** virDomainMigrateSetMaxDowntime: the longest pause QEMU may take for the switchover. */
export async function setMaxDowntime (conn: RpcConnection, dom: DomainRef, ms: number, options: CallOptions = {}): Promise<void> {
  const hyper = Buffer.alloc(8)
  hyper.writeBigUInt64BE(BigInt(ms))
  await conn.call(MigrationProc.DOMAIN_MIGRATE_SET_MAX_DOWNTIME, writeDomain(new XdrWriter(), dom).fixedOpaque(hyper).uint(0).toBuffer(), options)
}

const DOMAIN_GET_BLOCK_INFO = 194

/** virDomainGetBlockInfo: the disk's virtual size (capacity) in bytes. */
export async function blockCapacity (conn: RpcConnection, dom: DomainRef, path: string, options: CallOptions = {}): Promise<number> {
  const r = new XdrReader(await conn.call(DOMAIN_GET_BLOCK_INFO, writeDomain(new XdrWriter(), dom).string(path).uint(0).toBuffer(), options))
  r.uhyper() // allocation
  return r.uhyper()
}
