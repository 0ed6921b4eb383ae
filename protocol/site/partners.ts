import type { SigningKeyPair } from '../crypto/signing-keys'
import type { TlsIdentity } from '../crypto/tls-certificate'
import type { SignedRequest } from '../envelope/hop'
import type { Keyring } from '../envelope/keyring'
import { signForward, signNewRequest } from '../envelope/sign-request'
import { ProtocolError } from '../errors'
import { stringifyExact } from '../exact-json'
import type { Log } from '../log'
import type { Caller } from '../roles/caller'
import type { PartnerClient, SendOptions } from '../roles/partner-client'
import type { PartnerConfig, SiteConfig } from './config'
import { callSite, type Endpoint } from './signed-call'

/** The site's partners reached with signed requests over certificate-pinned HTTPS (roles/partner-client.ts). */
export class SignedPartners implements PartnerClient {
  constructor (
    private readonly self: { id: string, listen: string, signing: SigningKeyPair, tls: TlsIdentity },
    private readonly partners: readonly PartnerConfig[],
    private readonly keyring: Keyring,
    private readonly limits: Pick<SiteConfig['limits'], 'hopBudget' | 'timestampWindowMs' | 'requestTimeoutMs'>,
    private readonly log: Log,
  ) {}

  ids (): string[] {
    return this.partners.map((p) => p.id)
  }

  async send (to: string, op: string, body: unknown, caller: Caller | undefined, options: SendOptions = {}): Promise<unknown> {
    const signer = { id: this.self.id, secretKey: this.self.signing.secretKey }
    const sign = async (): Promise<SignedRequest> => caller?.verified !== undefined && caller.verified.request.op === op
      ? await signForward(signer, caller.verified.request, to, caller.verified.senderKey, options.ref)
      : await signNewRequest(signer, to, op, body, this.limits.hopBudget, options.ref)
    let request = await sign()
    const started = Date.now()
    let answer: unknown
    try {
      answer = await this.call(to, request, options.timeoutMs)
    } catch (err) {
      // A request held up on the way (a partition: the connection is made, or the request retransmitted,
      // after the partner's timestamp window) is refused unread as stale: signed afresh, it is sent once more.
      // A partner whose clock is off answers stale at once, and that is passed on as it is.
      if (!(err instanceof ProtocolError && err.code === 'stale-timestamp' && Date.now() - started > this.limits.timestampWindowMs / 2)) throw err
      this.log({ event: 'send-resigned', op, to, heldUpMs: Date.now() - started })
      request = await sign()
      answer = await this.call(to, request, options.timeoutMs)
    }
    // Control-channel cost, for bench/transfer: message size both ways and round-trip time.
    if (options.quiet !== true) this.log({ event: 'send', op, to, requestBytes: stringifyExact(request).length, answerBytes: stringifyExact(answer).length, ms: Date.now() - started })
    return answer
  }

  /**
   * One request with this site as its origin (never a forward: the receiver learns only its
   * neighbour). Unlike send it logs nothing per request (the monitoring relay sends hundreds a second).
   */
  async sendAsOrigin (to: string, op: string, body: unknown): Promise<unknown> {
    const request = await signNewRequest({ id: this.self.id, secretKey: this.self.signing.secretKey }, to, op, body, this.limits.hopBudget)
    return this.call(to, request)
  }

  private call (to: string, request: SignedRequest, timeoutMs = this.limits.requestTimeoutMs): Promise<unknown> {
    return callSite(this.endpoint(to), this.self.id, request, { windowMs: this.limits.timestampWindowMs, timeoutMs })
  }

  private endpoint (id: string): Endpoint {
    const { self } = this
    if (id === self.id) return { id, url: `https://${self.listen}`, tlsFingerprint: self.tls.fingerprint, publicKey: self.signing.publicKey }
    const partner = this.partners.find((p) => p.id === id)
    if (partner === undefined) throw new ProtocolError('unknown-sender', `${id} is not a partner of this site`)
    return { id, url: partner.url, tlsFingerprint: partner.tlsFingerprint, publicKey: this.keyring.get(id)! }
  }
}
