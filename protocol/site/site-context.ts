import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeKey, encodeKey, SEAL_PUBLIC_FILE } from '../crypto/key-files'
import { readSigningKeyPair, type SigningKeyPair } from '../crypto/signing-keys'
import { ready } from '../crypto/sealed-box'
import { readTlsIdentity, type TlsIdentity } from '../crypto/tls-certificate'
import { Keyring } from '../envelope/keyring'
import type { SignedRequest } from '../envelope/hop'
import { signForward, signNewRequest } from '../envelope/sign-request'
import type { VerifiedRequest } from '../envelope/verify-request'
import { ProtocolError } from '../errors'
import type { MonitoringRelay } from '../monitoring/monitoring-relay'
import { DirHost } from '../hosts/dir-host'
import { IntakeHost } from '../hosts/intake-host'
import { LibvirtVmHost } from '../hosts/libvirt-host'
import type { VmHost } from '../hosts/vm-host'
import type { PullResult } from '../proxy/puller'
import { SiteState } from '../state/site-state'
import type { SiteConfig } from './config'
import { callSite, type Endpoint } from './partner-client'

/** Who is asking: the verified sender of a request, or this site itself (the Controller runs in-process). */
export interface Caller {
  sender: string
  verified?: VerifiedRequest
}

export type Log = (event: Record<string, unknown>) => void

/** Everything a handler needs about this site; built once at start. */
export class SiteContext {
  readonly keyring: Keyring
  readonly hosts: Map<string, VmHost>
  /** Transfers this site's proxies are pulling now, by destination token: a second Initiate joins the first. */
  readonly pulls = new Map<string, Promise<PullResult>>()
  /** What those transfers have done so far, by VM id: `fedvm site status` shows it while they run. */
  readonly progress = new Map<string, { bytes: number, total: number, reused: number, rateBytesPerSecond: number }>()
  readonly proxyUrls: string[]
  /** The monitoring relay (issue 7): set by the site daemon once the site's monitoring.db is open. */
  monitoring?: MonitoringRelay
  private nextProxy = 0

  constructor (
    readonly config: SiteConfig,
    readonly signing: SigningKeyPair,
    readonly tls: TlsIdentity,
    readonly sealPublicKey: string,
    readonly state: SiteState,
    readonly log: Log,
  ) {
    this.keyring = new Keyring([...config.partners, { id: config.id, publicKey: signing.publicKey }])
    this.hosts = new Map(config.hosts.map((h): [string, VmHost] => [h.id, h.libvirt === undefined
      ? new DirHost(h.id, h.vmDir, h.maxVms)
      : new LibvirtVmHost({ id: h.id, uri: h.libvirt.uri, leaveBy: h.libvirt.leaveBy, vmDir: h.vmDir, maxVms: h.maxVms, memoryMiB: h.memoryMiB, vcpus: h.vcpus, log: (message) => log({ event: 'host', host: h.id, message }) })]))
    this.proxyUrls = config.proxies.map((p) => p.url)
  }

  static async load (config: SiteConfig, log: Log): Promise<SiteContext> {
    await ready() // libsodium compiles its WebAssembly once; not on the first request's clock
    const signing = await readSigningKeyPair(config.keys)
    const tls = await readTlsIdentity(config.keys)
    const sealPublicKey = encodeKey(decodeKey('seal.pub', await readFile(join(config.keys, SEAL_PUBLIC_FILE), 'utf8')))
    return new SiteContext(config, signing, tls, sealPublicKey, new SiteState(config.stateDir), log)
  }

  get id (): string { return this.config.id }

  /** Proxies take turns (the paper's "choose t ∈ T"). */
  chooseProxy (): number {
    const index = this.nextProxy
    this.nextProxy = (this.nextProxy + 1) % this.proxyUrls.length
    return index
  }

  /** A host by id; an intake ("intake:DIR") is the owner's directory of a VM being placed. */
  host (hostId: string, vmId: string): VmHost {
    if (hostId.startsWith('intake:')) return new IntakeHost(vmId, hostId.slice('intake:'.length))
    const host = this.hosts.get(hostId)
    if (host === undefined) throw new ProtocolError('internal', 'internal error', { cause: new Error(`no host ${hostId}`) })
    return host
  }

  newVersion (): string {
    return randomUUID()
  }

  endpoint (id: string): Endpoint {
    if (id === this.id) return { id, url: `https://${this.config.listen}`, tlsFingerprint: this.tls.fingerprint, publicKey: this.signing.publicKey }
    const partner = this.config.partners.find((p) => p.id === id)
    if (partner === undefined) throw new ProtocolError('unknown-sender', `${id} is not a partner of this site`)
    return { id, url: partner.url, tlsFingerprint: partner.tlsFingerprint, publicKey: this.keyring.get(id)! }
  }

  /**
   * Sends `op` to a partner: forwarded (same body, one more signed hop) when acting for a verified
   * caller, otherwise as a new request with this site as origin.
   */
  async send (to: string, op: string, body: unknown, caller: Caller | undefined, options: { ref?: string, timeoutMs?: number } = {}): Promise<unknown> {
    const signer = { id: this.id, secretKey: this.signing.secretKey }
    const sign = async (): Promise<SignedRequest> => caller?.verified !== undefined && caller.verified.request.op === op
      ? await signForward(signer, caller.verified.request, to, caller.verified.senderKey, options.ref)
      : await signNewRequest(signer, to, op, body, this.config.limits.hopBudget, options.ref)
    let request = await sign()
    const started = Date.now()
    const call = async (): Promise<unknown> => await callSite(this.endpoint(to), this.id, request, { windowMs: this.config.limits.timestampWindowMs, timeoutMs: options.timeoutMs ?? this.config.limits.requestTimeoutMs })
    let answer: unknown
    try {
      answer = await call()
    } catch (err) {
      // A request held up on the way (a partition: the connection is made, or the request retransmitted,
      // after the partner's timestamp window) is refused unread as stale: signed afresh, it is sent once more.
      // A partner whose clock is off answers stale at once, and that is passed on as it is.
      if (!(err instanceof ProtocolError && err.code === 'stale-timestamp' && Date.now() - started > this.config.limits.timestampWindowMs / 2)) throw err
      this.log({ event: 'send-resigned', op, to, heldUpMs: Date.now() - started })
      request = await sign()
      answer = await call()
    }
    // Control-channel cost, for bench/transfer: message size both ways and round-trip time.
    this.log({ event: 'send', op, to, requestBytes: JSON.stringify(request).length, answerBytes: JSON.stringify(answer).length, ms: Date.now() - started })
    return answer
  }

  /** Whether a request from this caller may still be forwarded one more hop. */
  mayForward (caller: Caller): boolean {
    if (caller.verified === undefined) return this.config.limits.hopBudget >= 1
    return caller.verified.last.budget >= 1
  }

  /** Sites the request already passed (never ask them again: loops). */
  passedSites (caller: Caller): Set<string> {
    return new Set([this.id, ...(caller.verified?.request.hops.map((h) => h.from) ?? [])])
  }
}
