import type { Manifest } from './manifest'
import type { TransferKey } from './transfer-certificate'
import type { TransferPlan } from './transfer-plan'

export type TokenState = 'open' | 'received' | 'spent' | 'cancelled' | 'expired'

/** A transfer token a proxy of this site issued: the only handle to a transfer outside this site. */
export interface TokenRecord {
  token: string
  role: 'source' | 'destination'
  proxy: number
  vmId: string
  hostId: string
  /** Source: the TLS fingerprint of the destination proxy's transfer certificate. Destination: the site that asked (unused). */
  boundTo: string
  /**
   * Destination: the keys made for this transfer (its proxy's client certificate, the key its ticket
   * is sealed for), kept until the token ends so a restarted site still pulls with them. Absent on
   * source tokens and once a destination token is spent, cancelled or expired.
   */
  transferKey?: TransferKey | null
  descriptor: unknown
  manifest: Manifest | null
  /** Source: the files fixed when the transfer was prepared (paths stay here, never sent). */
  plan?: TransferPlan | null
  state: TokenState
  expiresAt: number
  /** Source: the location version when the transfer was prepared. */
  locationVersion: string | null
  /** The site that asked for this token (Forced migration or Migration request); only it may use it in the control channel. */
  requester: string
}

/** Where the tokens are kept (the site state): what the proxies and the roles read and write of them. */
export interface TokenStore {
  token: (token: string) => TokenRecord | undefined
  putToken: (record: TokenRecord) => void
  /** Also forgets a destination token's transfer key once the state is spent, cancelled or expired. */
  setTokenState: (token: string, state: TokenState, manifest?: Manifest) => void
  /** A source token's plan with the chunk digests computed so far; the token's state stays as it is. */
  setTokenPlan: (token: string, plan: TransferPlan) => void
  /** The source's manifest, once the transfer hashed every chunk; the token's state stays as it is. */
  setTokenManifest: (token: string, manifest: Manifest) => void
  /** Open tokens past their expiry (the sweeper undoes what they prepared). */
  expiredOpenTokens: (now: number) => TokenRecord[]
  /** Open source tokens for a VM: a new Forced migration supersedes them. */
  openSourceTokens: (vmId: string) => TokenRecord[]
}
