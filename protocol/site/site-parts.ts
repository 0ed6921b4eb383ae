import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeKey, encodeKey, SEAL_PUBLIC_FILE } from '../crypto/key-files'
import { ready } from '../crypto/sealed-box'
import { readSigningKeyPair, type SigningKeyPair } from '../crypto/signing-keys'
import { readTlsIdentity, type TlsIdentity } from '../crypto/tls-certificate'
import { Keyring } from '../envelope/keyring'
import type { Log } from '../log'
import { ProxyPool } from '../proxy/proxy-pool'
import { RelayTransfers } from '../proxy/relay-transfers'
import { sourceStreamAuthorizer } from '../proxy/stream-authorizer'
import { StreamPark } from '../proxy/stream-relay'
import type { ResolverDeps } from '../roles/resolver'
import { ActiveMigrations } from '../roles/active-migrations'
import { IncomingTransfers } from '../roles/incoming-transfers'
import { LiveSessions } from '../roles/live-sessions'
import { ProgressBoard } from '../roles/migration-progress'
import { TokenLocks } from '../roles/token-locks'
import type { SiteConfig } from './config'
import { SignedPartners } from './partners'
import { SiteHosts } from './site-hosts'
import { SiteState } from './site-state'

/**
 * The parts a running site is made of, built once at start from its config and keys. Only site/
 * (the daemon, its server and operation table) sees them all; each role, proxy and relay part is
 * handed the few it declares (roles/*: `…Deps`).
 */
export interface SiteParts extends ResolverDeps {
  config: SiteConfig
  keyring: Keyring
  signing: SigningKeyPair
  tls: TlsIdentity
  state: SiteState
  hosts: SiteHosts
  partners: SignedPartners
  proxies: ProxyPool
  /** The transfers this site relays (policy.relayTransfers), shared by the Intermediary role and the proxies. */
  relay?: RelayTransfers
  /** How far each migration whose data moves at this site has got (a cold pull here as Destination, a live job here as Source). */
  progress: ProgressBoard
}

export async function loadSiteParts (config: SiteConfig, log: Log): Promise<SiteParts> {
  await ready() // libsodium compiles its WebAssembly once; not on the first request's clock
  const signing = await readSigningKeyPair(config.keys)
  const tls = await readTlsIdentity(config.keys)
  const sealPublicKey = encodeKey(decodeKey('seal.pub', await readFile(join(config.keys, SEAL_PUBLIC_FILE), 'utf8')))
  const keyring = new Keyring([...config.partners, { id: config.id, publicKey: signing.publicKey }])
  const state = new SiteState(config.stateDir)
  const proxies = new ProxyPool(config.proxies.map((p) => p.url))
  const identity = { sealPublicKey, tlsFingerprint: tls.fingerprint, tls, keysDir: config.keys }
  return {
    self: config.id,
    config,
    keyring,
    signing,
    tls,
    state,
    tokens: state,
    locations: state,
    routes: state,
    migrations: state,
    active: new ActiveMigrations(),
    settling: new TokenLocks(),
    hosts: new SiteHosts(config.hosts, log),
    partners: new SignedPartners({ id: config.id, listen: config.listen, signing, tls }, config.partners, keyring, config.limits, log),
    proxies,
    identity,
    ...(config.policy.relayTransfers ? { relay: new RelayTransfers(identity, () => proxies.url(proxies.choose()), config.limits.tokenTtlMs) } : {}),
    policy: config.policy,
    limits: config.limits,
    transfers: new IncomingTransfers(),
    live: new LiveSessions(),
    // One per transfer proxy: its TLS server hands it the upgraded stream connections (site-daemon.ts).
    streams: config.proxies.map((_, index) => new StreamPark(sourceStreamAuthorizer(state, index), log)),
    progress: new ProgressBoard(),
    newVersion: randomUUID,
    log,
  }
}
