/**
 * The unix sockets one live migration's streams use, and the typed parameters every phase is
 * given (as libvirt's own client passes the same list to all five). libvirt hands the same socket
 * path to both ends (the Destination's QEMU listens on it, the Source's connects to it), so the path
 * is one both libvirtds resolve in their own /run/libvirt: the stream relay listens on the Source's
 * and connects to the Destination's.
 */
import { dirname, join } from 'node:path'
import { rpcTarget } from './guest-clock'
import { MigrateParam, type TypedParams } from './rpc/migration-params'

export type LiveChannel = 'migration' | 'nbd'
export const LIVE_CHANNELS: readonly LiveChannel[] = ['migration', 'nbd']

/** libvirt's run directory as libvirtd sees it; its socket lives there. */
const LIBVIRT_RUN_DIR = '/run/libvirt'

/** A migration id travels between sites: only letters and digits, so it can name a socket file. */
export function checkMigrationId (id: string): string {
  if (!/^[a-z0-9]{8,64}$/.test(id)) throw new Error(`migration id ${JSON.stringify(id)} must be 8-64 lower-case letters or digits`)
  return id
}

function socketName (id: string, channel: LiveChannel): string {
  return `fedvm-live-${checkMigrationId(id)}-${channel}.sock`
}

/** The socket as libvirtd and QEMU see it. */
export function libvirtSocketPath (id: string, channel: LiveChannel): string {
  return join(LIBVIRT_RUN_DIR, socketName(id, channel))
}

/**
 * The same socket as this process sees it: beside libvirtd's own socket (the folder a private
 * libvirtd's /run/libvirt is mounted from, or /run/libvirt itself).
 */
export function localSocketPath (uri: string, id: string, channel: LiveChannel): string {
  return join(dirname(rpcTarget(uri).socketPath), socketName(id, channel))
}

/**
 * The largest bandwidth cap libvirt takes (its "unlimited", QEMU_DOMAIN_MIG_BANDWIDTH_MAX): it
 * turns MiB/s into bytes/s in a signed 64-bit integer.
 */
export const MAX_BANDWIDTH_MIBS = 2 ** 43 - 1

/**
 * `bandwidthMiBs` caps the migration at the Source (libvirt's VIR_MIGRATE_PARAM_BANDWIDTH, MiB/s):
 * Perform hands it to QEMU as the memory stream's max-bandwidth and to each disk's NBD mirror job
 * as its speed, so the disks' copy is held to it too. Absent: unlimited.
 */
export function liveParams (id: string, domainName: string, o: { bandwidthMiBs?: number } = {}): TypedParams {
  return {
    [MigrateParam.URI]: `unix://${libvirtSocketPath(id, 'migration')}`,
    [MigrateParam.DISKS_URI]: `unix://${libvirtSocketPath(id, 'nbd')}`,
    [MigrateParam.DEST_NAME]: domainName,
    ...(o.bandwidthMiBs === undefined ? {} : { [MigrateParam.BANDWIDTH]: checkBandwidth(o.bandwidthMiBs) })
  }
}

function checkBandwidth (mibs: number): number {
  if (!Number.isInteger(mibs) || mibs < 1 || mibs > MAX_BANDWIDTH_MIBS) throw new RangeError(`migration bandwidth ${mibs} must be an integer from 1 to ${MAX_BANDWIDTH_MIBS} (MiB/s)`)
  return mibs
}
