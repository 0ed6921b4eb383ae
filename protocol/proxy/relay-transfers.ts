import { normalizeFingerprint } from '../crypto/tls-certificate'
import { ProtocolError } from '../errors'
import { openTicket, sealTicket, type SourceTicket } from './ticket'
import { newToken } from './tokens'

/** A partner's offer as this site passes it on: the keys a ticket is sealed and bound to. */
export interface OfferKeys {
  sealKey: string
  tlsFingerprint: string
}

/** One relayed transfer: what this site's proxy pulls from (the Source's ticket) for whom (the Destination's certificate). */
export interface RelayedTransfer {
  vmId: string
  upstream: SourceTicket
  /** The fingerprint of the certificate the Destination made for this transfer: the only one that may read through the relay. */
  boundTo: string
  expiresAt: number
}

/**
 * The relay policy of an Intermediary: the offers it passes on carry its own sealing key and TLS
 * fingerprint, so the Source seals its ticket for this site and binds it to this site's proxy; at
 * Initiate transfer this site opens that ticket and seals a new one for the Destination naming its
 * own proxy. Neither end learns the other's proxy address; every byte crosses this site. Kept in
 * memory: after a restart the Source's ticket passes on unopened and the Destination refuses it (no
 * transfer, the VM stays at the Source).
 */
export class RelayTransfers {
  private readonly offers = new Map<string, OfferKeys & { expiresAt: number }>()
  private readonly relays = new Map<string, RelayedTransfer>()

  constructor (
    private readonly own: { sealPublicKey: string, tlsFingerprint: string, keysDir: string },
    private readonly proxyUrl: () => string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The offer as this site passes it on under `ref` (its own route): its keys in place of the partner's. */
  substitute<T extends OfferKeys> (ref: string, offer: T): T {
    this.forgetExpired()
    this.offers.set(ref, { sealKey: offer.sealKey, tlsFingerprint: offer.tlsFingerprint, expiresAt: this.now() + this.ttlMs })
    return { ...offer, sealKey: this.own.sealPublicKey, tlsFingerprint: this.own.tlsFingerprint }
  }

  /**
   * The ticket to pass on for the offer `ref`: the Source's ticket (sealed for this site) opened, and
   * a new one sealed for the Destination naming this site's proxy and a relay token. Undefined when
   * the offer was not relayed here.
   */
  async reseal (ref: string, sealedTicket: string, vmId: string): Promise<string | undefined> {
    const offer = this.offers.get(ref)
    if (offer === undefined) return undefined
    const boundTo = normalizeFingerprint(offer.tlsFingerprint)
    if (boundTo === undefined) throw new ProtocolError('bad-request', 'the relayed offer\'s tlsFingerprint is not a SHA-256 fingerprint')
    const upstream = await openTicket(sealedTicket, this.own.keysDir, vmId)
    const token = newToken()
    this.relays.set(token, { vmId, upstream, boundTo, expiresAt: this.now() + this.ttlMs })
    return await sealTicket({ vmId, uri: this.proxyUrl(), fingerprint: this.own.tlsFingerprint, token }, offer.sealKey)
  }

  /** The relayed transfer a token names, while it is valid. */
  transfer (token: string | undefined): RelayedTransfer | undefined {
    if (token === undefined) return undefined
    const relay = this.relays.get(token)
    if (relay === undefined || relay.expiresAt < this.now()) return undefined
    return relay
  }

  private forgetExpired (): void {
    const now = this.now()
    for (const [ref, offer] of this.offers) if (offer.expiresAt < now) this.offers.delete(ref)
    for (const [token, relay] of this.relays) if (relay.expiresAt < now) this.relays.delete(token)
  }
}
