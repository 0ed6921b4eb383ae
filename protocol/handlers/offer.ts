/**
 * An answer to a Migration request: the handle to pass back in Initiate transfer (a destination token,
 * or an Intermediary's route to one), and what the Source needs to bind its token to the destination
 * proxy and seal ⟨suri, stok⟩ for it. No address: location unawareness.
 */
export interface Offer {
  ref: string
  sealKey: string
  tlsFingerprint: string
  /** How many delegations away the destination is (0: the answering site's own host). */
  depth: number
  /** How many more VMs like this one that host takes (its free VM slots, bounded by free memory and vCPUs). */
  free: number
}

export function parseOffers (value: unknown): Offer[] {
  const offers = (value as { offers?: unknown })?.offers
  if (!Array.isArray(offers)) return []
  return offers.filter((o): o is Offer => typeof o === 'object' && o !== null &&
    typeof o.ref === 'string' && typeof o.sealKey === 'string' && typeof o.tlsFingerprint === 'string' &&
    Number.isSafeInteger(o.depth) && Number.isSafeInteger(o.free))
    .map((o) => ({ ref: o.ref, sealKey: o.sealKey, tlsFingerprint: o.tlsFingerprint, depth: o.depth, free: o.free }))
}
