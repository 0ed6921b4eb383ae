/**
 * What a site remembers of the VMs it is responsible for and of the routes it forwards through as an
 * Intermediary (kept in the site state, site/site-state.ts). Location unawareness: a record names a
 * host of this site or the neighbour the VM went to, nothing further.
 */
export interface LocationRecord {
  vmId: string
  kind: 'host' | 'partner' | 'intake'
  /** A host id (local), a partner site id, or the directory of a VM being placed. */
  target: string
  /** The site that delegated the VM here; null when this site is where it started. */
  upstream: string | null
  descriptor: unknown
  /** Changes whenever the record is rewritten: a verified transfer removes the record only if it is unchanged. */
  version: string
}

export interface RouteRecord {
  ref: string
  /** offer: a wrapped offer of a partner (Initiate transfer follows it); source: a prepared transfer further along. */
  kind: 'offer' | 'source'
  vmId: string
  partner: string
  partnerRef: string
  /** The site that may use this route (the one this site answered). */
  requester: string
  locationVersion: string | null
  expiresAt: number
}

export type FormerLocation = Pick<LocationRecord, 'kind' | 'target' | 'upstream'> & { leftAt: number }

export interface LocationStore {
  location: (vmId: string) => LocationRecord | undefined
  locations: () => LocationRecord[]
  setLocation: (record: LocationRecord) => void
  /** Forgets where a VM went, unless the record was rewritten since `version` (the VM came back meanwhile). */
  dropLocationIf: (vmId: string, version: string) => boolean
  /** Where a VM was before its record was replaced or dropped (newest first, since `since`). */
  formerLocations: (vmId: string, since: number) => FormerLocation[]
}

export interface RouteStore {
  route: (ref: string) => RouteRecord | undefined
  putRoute: (record: RouteRecord) => void
  /** The offer route this site made of `partner`'s offer `partnerRef` (the way back up from a Destination). */
  offerRouteTo: (partner: string, partnerRef: string) => RouteRecord | undefined
  /** Transfers this site prepared, or routed as Controller/Intermediary, for a VM and not yet expired. */
  sourceRoutes: (vmId: string, requester: string, now: number) => RouteRecord[]
}
