/**
 * fedvm's live path between two libvirtds without the sites around it: Begin/Perform/Confirm on the
 * Source's libvirtd, Prepare/Finish on the Destination's, the neutralised cookies handed across, and
 * QEMU's migration and NBD streams through the token-bound TLS stream relay (StreamPark at the Source,
 * StreamParker at the Destination) on loopback.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:https'
import { LiveDestination } from '../../host/libvirt/live-destination'
import { LIVE_CHANNELS, localSocketPath } from '../../host/libvirt/live-params'
import { LiveSource } from '../../host/libvirt/live-source'
import { ProtocolError } from '../../protocol/errors'
import { StreamPark, StreamParker } from '../../protocol/proxy/stream-relay'
import type { LibvirtHost } from '../../test/support/vm/libvirt-host'
import { ExternalRamp, type RampTrace } from './downtime-ramp-driver'

export interface TlsIdentity { key: string, cert: string, fingerprint: string }

/**
 * Moves the running domain `name` from `src` to `dst` (its files into `dstDir`); libvirt's downtime and
 * elapsed time. `o.ramp`: the downtime limit ramps during Perform (downtime-ramp-driver.ts), as on a
 * host with `downtimeRamp: true`, driven from outside like the direct path's ramped rounds.
 * `o.maxDowntimeMs`: QEMU's downtime limit (default 300 ms, the hosts' default).
 */
export async function relayedLiveMigrate (src: LibvirtHost, dst: LibvirtHost, name: string, dstDir: string, srcTls: TlsIdentity, dstTls: TlsIdentity, o: { ramp?: boolean, maxDowntimeMs?: number } = {}): Promise<{ downtime?: number, elapsed?: number, ramp?: RampTrace }> {
  const id = randomBytes(8).toString('hex')
  const token = randomBytes(16).toString('hex')
  const park = new StreamPark((presented, _c, fingerprint) => {
    if (presented !== token || fingerprint !== dstTls.fingerprint) throw new ProtocolError('token-foreign', 'not this migration')
    return token
  })
  const server = createServer({ key: srcTls.key, cert: srcTls.cert, requestCert: true, rejectUnauthorized: false })
  server.on('upgrade', (req, socket) => park.handleUpgrade(req, socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const source = await LiveSource.begin({ uri: src.uri, domain: name, id, maxDowntimeMs: o.maxDowntimeMs })
  let destination: LiveDestination | undefined
  const parkers: StreamParker[] = []
  try {
    destination = await LiveDestination.prepare({ uri: dst.uri, id, domain: name, dir: dstDir, offer: source.offer })
    for (const channel of LIVE_CHANNELS) await park.listen(token, channel, localSocketPath(src.uri, id, channel))
    for (const channel of LIVE_CHANNELS) parkers.push(new StreamParker({ url: `https://127.0.0.1:${port}`, fingerprint: srcTls.fingerprint, token, channel, clientCert: dstTls, targetPath: destination.socketPath(channel) }))
    // Begin set the maximum; the ramp lowers it to its start limit right before Perform, as LiveSource's does.
    const ramp = o.ramp === true ? await ExternalRamp.start(src.uri, name, { fullByMs: source.defaultCompletionTimeoutMs / 2 }) : undefined
    let performed: Buffer
    let rampTrace: RampTrace | undefined
    try {
      performed = await source.perform(destination.cookie)
    } finally {
      rampTrace = await ramp?.stop()
    }
    const finished = await destination.finish(performed, false)
    if (finished === undefined) throw new Error('Finish returned no domain')
    await source.confirm(finished.cookie, false)
    const stat = (key: string): number | undefined => { const m = new RegExp(`<${key}>(\\d+)</${key}>`).exec(performed.toString()); return m === null ? undefined : Number(m[1]) }
    return { downtime: stat('downtime'), elapsed: stat('time_elapsed'), ramp: rampTrace }
  } finally {
    for (const p of parkers) p.close()
    park.close()
    server.close()
    await destination?.close()
    await source.close()
  }
}

