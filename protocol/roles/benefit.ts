import type { Offer } from './partner-answers'

export interface Candidate {
  /** The site to send Initiate transfer to: this site itself, or the partner that made the offer. */
  via: string
  offer: Offer
}

/**
 * The Controller's site-defined benefit (paper step 3): its own hosts first (no inter-site traffic),
 * then preferred partners in the order listed, then fewer delegations, then more free room.
 */
export function benefit (candidate: Candidate, self: string, prefer: string[]): number {
  // Above the best partner's score, whatever the length of prefer: own hosts always rank first.
  const local = candidate.via === self ? (prefer.length + 1) * 1_000 : 0
  const preferred = prefer.includes(candidate.via) ? (prefer.length - prefer.indexOf(candidate.via)) * 1_000 : 0
  return local + preferred - candidate.offer.depth * 100 + Math.min(candidate.offer.free, 99)
}

export function rankCandidates (candidates: Candidate[], self: string, prefer: string[]): Candidate[] {
  return [...candidates].sort((a, b) => benefit(b, self, prefer) - benefit(a, self, prefer))
}
