import { mkdir } from 'node:fs/promises'
import type { Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { readTlsIdentity, writeTlsIdentity, type TlsIdentity } from '../../../../protocol/crypto/tls-certificate'
import { createSourceServer } from '../../../../protocol/proxy/source-server'
import type { SourceTicket } from '../../../../protocol/proxy/ticket'
import { newToken } from '../../../../protocol/proxy/tokens'
import type { PlannedFile } from '../../../../protocol/proxy/transfer-plan'
import { SiteState } from '../../../../protocol/site/site-state'
import type { Throttle } from '../../../../protocol/proxy/throttle'

/**
 * A real source proxy (the site daemon's HTTPS server and SQLite site state) serving one prepared
 * transfer, and the destination's TLS identity the token is bound to. `restart` starts a new server
 * on the same state: what a source site daemon restarted mid-transfer sees.
 */
export class SourceProxy {
  events: Array<Record<string, unknown>> = []
  private server!: Server

  private constructor (readonly state: SiteState, readonly src: TlsIdentity, readonly dst: TlsIdentity, readonly ticket: SourceTicket, private readonly throttle?: Throttle) {}

  static async start (dir: string, vmId: string, chunkBytes: number, files: PlannedFile[], throttle?: Throttle): Promise<SourceProxy> {
    await mkdir(join(dir, 'src-keys'), { recursive: true }); await mkdir(join(dir, 'dst-keys'), { recursive: true })
    await writeTlsIdentity(join(dir, 'src-keys'), 'src'); await writeTlsIdentity(join(dir, 'dst-keys'), 'dst')
    const src = await readTlsIdentity(join(dir, 'src-keys'))
    const dst = await readTlsIdentity(join(dir, 'dst-keys'))
    const state = new SiteState(join(dir, 'state'))
    const token = newToken()
    state.putToken({
      token, role: 'source', proxy: 0, vmId, hostId: 'h1', boundTo: dst.fingerprint, descriptor: null, manifest: null,
      plan: { chunkBytes, files }, state: 'open', expiresAt: Date.now() + 600_000, locationVersion: null, requester: 'site-a',
    })
    const proxy = new SourceProxy(state, src, dst, { kind: 'fedvm-source-ticket', vmId, uri: '', fingerprint: src.fingerprint, token }, throttle)
    await proxy.listen()
    return proxy
  }

  get clientCert (): { key: string, cert: string } {
    return { key: this.dst.key, cert: this.dst.cert }
  }

  async restart (): Promise<void> {
    await this.close()
    await this.listen()
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private async listen (): Promise<void> {
    this.server = createSourceServer({ index: 0, state: this.state, tls: this.src, throttle: this.throttle, log: (e) => this.events.push(e) })
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.ticket.uri = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }
}
