import { randomUUID } from 'node:crypto'
import { backoffMs } from '../backoff'
import { ProtocolError, toProtocolError } from '../errors'
import { failureCauses } from '../proxy/failure-cause'
import { manifestBytes, manifestsAgree } from '../proxy/manifest'
import type { ActiveMigrations } from './active-migrations'
import { rankCandidates, type Candidate } from './benefit'
import type { Caller } from './caller'
import { handleInitiateTransfer, handleMigrationRequest } from './destination'
import { faultPoint } from './fault-point'
import { prepareSource, type ForcedMigrationDeps } from './forced-migration'
import { hostIdOf } from './host-directory'
import { liveTransfer } from './live-path'
import { askPartner, askPartners } from './intermediary'
import type { MigrationRecord } from './migration-record'
import { TransferStatusSchema, type Offer, type PreparedSource, type TransferStatus, type VerificationAnswer } from './partner-answers'
import { watchProgress, type ProgressWatchDeps } from './progress-watch'
import type { LocationRecord } from './records'
import { demandOf, withDemand } from './room'
import { decide, refusedByDestination, settleMigration, type SettleDeps } from './settle'
import { handleTransferVerification } from './source'

/** Between Initiate transfer attempts on one offer. */
const RETRY = { minMs: 500, maxMs: 8000, jitter: false }

export interface ControllerDeps extends SettleDeps, ForcedMigrationDeps, ProgressWatchDeps {
  hosts: SettleDeps['hosts']
  tokens: SettleDeps['tokens'] & ForcedMigrationDeps['tokens'] & ProgressWatchDeps['tokens']
  locations: SettleDeps['locations'] & ForcedMigrationDeps['locations']
  routes: SettleDeps['routes'] & ForcedMigrationDeps['routes'] & ProgressWatchDeps['routes']
  progress: SettleDeps['progress'] & ProgressWatchDeps['progress']
  proxies: SettleDeps['proxies'] & ForcedMigrationDeps['proxies']
  identity: SettleDeps['identity'] & ForcedMigrationDeps['identity']
  policy: SettleDeps['policy'] & { prefer: string[] }
  limits: SettleDeps['limits'] & ForcedMigrationDeps['limits'] & { initiateAttempts: number }
  /** The Controller's running migrations (`fedvm site status`), their figures filled by watchProgress. */
  active: ActiveMigrations
}

export interface MigrationOutcome {
  vm: string
  outcome: 'migrated'
  /** The site the VM was handed to: this site, or the partner through which it went (never further: location unawareness). */
  destination: string
  local: boolean
  bytes: number
  fetchedBytes: number
  reusedBytes: number
  digestsAgree: boolean
  attempts: number
  offers: number
  durationMs: number
  /** Both sides have acted on the decision; false: one could not be reached yet and settles later by itself. */
  settled: boolean
  /** 'live': the VM kept running while it moved (libvirt's measured switchover downtime when known); 'cold': it was stopped and its files copied. */
  path: 'live' | 'cold'
  downtimeMs?: number
}

/**
 * The Controller's main migration algorithm (paper III-C, steps 1–7). Initiate transfer is repeated
 * until dstat = sstat, at most `initiateAttempts` times per offer; an offer whose destination never
 * took the VM (no room left, a host that could not run it) gives way to the next best one.
 * Each offer tried has a migration record; its decision (commit once dstat = sstat, else abort) is
 * recorded before either side is told (settle.ts), so the VM is runnable at exactly one site whatever
 * crashes. On final failure the VM stays where it was and keeps working.
 */
export async function runController (deps: ControllerDeps, vmId: string, exclude: string[], to?: string): Promise<MigrationOutcome> {
  const record = deps.locations.location(vmId)
  if (record === undefined) throw new ProtocolError('unknown-vm', 'this site is not responsible for the VM')
  checkNothingInDoubt(deps, vmId)
  deps.active.enter(vmId)
  try {
    return await migrate(deps, vmId, exclude, to, record)
  } finally {
    deps.active.leave(vmId)
  }
}

async function migrate (deps: ControllerDeps, vmId: string, exclude: string[], to: string | undefined, record: LocationRecord): Promise<MigrationOutcome> {
  const started = Date.now()
  const pin = pinOf(deps, to)
  const self: Caller = { sender: deps.self }

  // Steps 1–2: Migration request to every possible destination, the local site included, in parallel.
  const descriptor = await descriptorWithDemand(deps, vmId, record)
  const body = { vmId, descriptor, exclude }
  const refusals: Array<{ partner: string, error: ProtocolError }> = []
  const [local, remote] = await Promise.all([
    pin.local
      ? handleMigrationRequest(deps, self, body, { delegate: false }).then((r) => r.offers
        .filter((offer) => pin.host === undefined || deps.tokens.token(offer.ref)?.hostId === pin.host)
        .map((offer): Candidate => ({ via: deps.self, offer })))
      : [],
    pin.partners
      ? askPartners(deps, undefined, vmId, body, new Set([...exclude, ...pin.skipPartners]), refusals).then((r) => r.map(({ partner, offer }): Candidate => ({ via: partner, offer })))
      : [],
  ])
  const candidates = rankCandidates([...local, ...remote], deps.self, deps.policy.prefer)
  deps.log({ event: 'controller-offers', vm: vmId, offers: candidates.length, ...(to === undefined ? {} : { to }) })
  if (candidates.length === 0) {
    // A partner that refused this site's request for its clock is not "no room": say so, so the user fixes the clock.
    const skewed = refusals.filter((r) => r.error.code === 'stale-timestamp').map((r) => r.partner)
    if (skewed.length > 0) throw new ProtocolError('stale-timestamp', `no destination offered to take the VM: ${skewed.join(', ')} refused the request for clock skew (its clock and this site's differ by more than the accepted window)`, { retryable: true })
    throw new ProtocolError('no-placement', to === undefined ? 'no destination offered to take the VM' : `${to} offered no room for the VM`)
  }

  // Step 3: the greatest benefit first; when its transfer cannot start or its host cannot run the VM, the next.
  let source: { prepared: PreparedSource, for: Offer } | undefined
  let lastError: ProtocolError | undefined
  for (const [index, chosen] of candidates.entries()) {
    // Step 4: Forced migration on the Source (through the chain of delegation). Its ticket is sealed for, and
    // its token bound to, one destination site: another site's offer needs the VM prepared for that site.
    if (source === undefined || !sameSite(source.for, chosen.offer)) {
      const prepared = await prepareSource(deps, vmId, { sealKey: chosen.offer.sealKey, tlsFingerprint: chosen.offer.tlsFingerprint, ...(chosen.offer.live === true ? { live: true } : {}) })
      source = { prepared, for: chosen.offer }
    }
    const migration = beginMigration(deps, vmId, chosen, source.prepared, record)
    faultPoint('controller:prepared')
    const next = candidates[index + 1]
    const stopWatching = watchProgress(deps, migration)
    const result = await (source.prepared.live === true ? liveResult(deps, chosen, vmId, source.prepared, migration) : transfer(deps, chosen, vmId, source.prepared, migration.id)).finally(stopWatching)
    // Only an offer whose destination refused the VM may be passed over: one that went quiet may run it already.
    const handOverSource = (result.agreed === true || result.nextOfferAllowed) && next !== undefined && sameSite(source.for, next.offer)
    if (result.agreed === true) {
      faultPoint('controller:verified')
      decide(deps, migration, 'commit')
      faultPoint('controller:decided')
      const settled = await settleMigration(deps, migration.id, { handOverSource })
      if (settled.record.decision !== 'abort') {
        const outcome: MigrationOutcome = {
          ...result.outcome, offers: candidates.length, durationMs: Date.now() - started,
          settled: settled.record.destinationSettled && settled.record.sourceSettled,
        }
        deps.log({ event: 'migrated', ...outcome, offerTried: index + 1 })
        return outcome
      }
      // The destination's host could not run the VM: it dropped the files, and the next offer may take it.
      lastError = settled.error ?? new ProtocolError('transfer-failed', 'the destination could not run the VM', { retryable: false })
      if (!handOverSource) source = undefined
    } else {
      lastError = result.error
      const now = deps.migrations.migration(migration.id) ?? migration
      if (now.decision === 'undecided') decide(deps, now, 'abort')
      await settleMigration(deps, migration.id, { handOverSource })
      if (!result.nextOfferAllowed) break
      if (!handOverSource) source = undefined
    }
    deps.log({ event: 'offer-failed', vm: vmId, via: chosen.via, code: lastError.code, next: next !== undefined })
  }
  throw new ProtocolError(lastError?.code ?? 'transfer-failed', `the migration failed; the VM stays where it was (${lastError?.code ?? 'transfer-failed'})`, { cause: lastError, retryable: true })
}

/**
 * A VM whose last migration is still undecided, or decided commit but not yet run by its Destination,
 * must not start another one: the Source would hand out files that may already run elsewhere.
 */
function checkNothingInDoubt (deps: ControllerDeps, vmId: string): void {
  const open = deps.migrations.migrationsOf(vmId).find((m) => m.decision === 'commit' || (m.decision === 'undecided' && !deps.active.has(vmId)))
  if (open !== undefined) throw new ProtocolError('transfer-failed', 'a previous migration of the VM is still being settled; try again shortly', { retryable: true })
}

function beginMigration (deps: ControllerDeps, vmId: string, chosen: Candidate, source: PreparedSource, record: LocationRecord): MigrationRecord {
  const migration: MigrationRecord = {
    id: randomUUID(), vmId, via: chosen.via, offerRef: chosen.offer.ref,
    sourceVia: record.kind === 'partner' ? record.target : deps.self, sourceToken: source.token,
    decision: 'undecided', destinationSettled: false, sourceSettled: false,
    upstream: record.upstream, descriptor: record.descriptor, createdAt: Date.now(),
    ...(source.live === true ? { live: 'prepared' as const } : {}),
  }
  deps.migrations.putMigration(migration)
  deps.log({ event: 'migration-begun', vm: vmId, migration: migration.id, via: chosen.via })
  return migration
}

/**
 * Cancels the migrations of a VM this site is running as Controller and has not decided yet: the
 * decision is abort, the Destination drops what it received and the Source runs the VM again.
 */
export async function cancelMigrations (deps: ControllerDeps, vmId: string): Promise<{ vm: string, transfers: number, cancelled: number }> {
  const undecided = deps.migrations.migrationsOf(vmId).filter((m) => m.decision === 'undecided')
  let cancelled = 0
  for (const migration of undecided) {
    decide(deps, migration, 'abort')
    const settled = await settleMigration(deps, migration.id)
    if (settled.record.sourceSettled) cancelled++
  }
  return { vm: vmId, transfers: undecided.length, cancelled }
}

/**
 * Which offers a pinned migration (`fedvm migrate --to`) asks for: TO names this site (its own hosts
 * only), a partner (its offers only, including those it delegates further), or one host of this site,
 * in that order. Without TO every destination competes and the benefit ranks them.
 */
function pinOf (deps: ControllerDeps, to: string | undefined): { local: boolean, partners: boolean, host?: string, skipPartners: string[] } {
  const partners = deps.partners.ids()
  if (to === undefined) return { local: true, partners: true, skipPartners: [] }
  if (to === deps.self) return { local: true, partners: false, skipPartners: [] }
  if (partners.includes(to)) return { local: false, partners: true, skipPartners: partners.filter((p) => p !== to) }
  if (deps.hosts.has(to)) return { local: true, partners: false, host: to, skipPartners: [] }
  throw new ProtocolError('bad-request', `to: ${JSON.stringify(to)} is neither this site, a partner nor a host of this site`)
}

type TransferResult = Awaited<ReturnType<typeof transfer>>

/** Steps 5–7 on the live path (live-path.ts), in the terms of the cold path's result. */
async function liveResult (deps: ControllerDeps, chosen: Candidate, vmId: string, source: PreparedSource, migration: MigrationRecord): Promise<TransferResult> {
  const live = await liveTransfer(deps, chosen, vmId, source, migration)
  if (!live.agreed) return { error: live.error ?? new ProtocolError('transfer-failed', 'the live migration did not complete'), nextOfferAllowed: false }
  const bytes = (live.status?.disks ?? []).reduce((s, d) => s + d.bytes, 0)
  return {
    agreed: true,
    outcome: {
      vm: vmId, outcome: 'migrated', destination: chosen.via, local: chosen.via === deps.self, bytes, fetchedBytes: bytes, reusedBytes: 0,
      digestsAgree: true, attempts: 1, path: 'live', ...(live.downtimeMs === undefined ? {} : { downtimeMs: live.downtimeMs }),
    },
  }
}

/** Steps 5–7 for one offer: Initiate transfer, Transfer verification, until dstat = sstat (agreed: the decision may be commit). */
async function transfer (deps: ControllerDeps, chosen: Candidate, vmId: string, source: PreparedSource, migrationId: string): Promise<
  { agreed: true, outcome: Omit<MigrationOutcome, 'offers' | 'durationMs' | 'settled'>, error?: undefined, nextOfferAllowed?: undefined } |
  { agreed?: false, outcome?: undefined, error: ProtocolError, nextOfferAllowed: boolean }
> {
  const self: Caller = { sender: deps.self }
  let lastError: ProtocolError | undefined
  let received = false
  // The destination said it will not take the VM (rather than going quiet, when it may have taken it).
  let refused = false
  for (let attempt = 1; attempt <= deps.limits.initiateAttempts; attempt++) {
    // Cancelled meanwhile (fedvm site cancel decided abort): nothing more is asked of either side.
    if (deps.migrations.migration(migrationId)?.decision !== 'undecided') return { error: new ProtocolError('transfer-cancelled', 'the transfer was cancelled'), nextOfferAllowed: false }
    let dstat: TransferStatus
    try {
      dstat = await initiate(deps, chosen, vmId, source.ticket)
    } catch (err) {
      lastError = toProtocolError(err)
      deps.log({ event: 'initiate-failed', vm: vmId, attempt, code: lastError.code, retryable: lastError.retryable, causes: failureCauses(err) })
      // A host that filled up since it offered will not empty by waiting: the next offer is better.
      refused = refusedByDestination(lastError)
      if (!lastError.retryable || refused) break
      await sleep(backoffMs(attempt - 1, RETRY))
      continue
    }
    received = true
    faultPoint('controller:received')
    if (deps.migrations.migration(migrationId)?.decision !== 'undecided') return { error: new ProtocolError('transfer-cancelled', 'the transfer was cancelled'), nextOfferAllowed: false }
    let sstat: VerificationAnswer
    try {
      sstat = await handleTransferVerification(deps, self, { vmId, token: source.token, dstat: dstat.status })
    } catch (err) {
      lastError = toProtocolError(err)
      deps.log({ event: 'verification-failed', vm: vmId, attempt, code: lastError.code, causes: failureCauses(err) })
      if (!lastError.retryable) break
      await sleep(backoffMs(attempt - 1, RETRY))
      continue
    }
    if (sstat.state === 'verified' && !('uuid' in sstat.status) && manifestsAgree(dstat.status, sstat.status)) {
      return {
        agreed: true,
        outcome: {
          vm: vmId, outcome: 'migrated', destination: chosen.via, local: chosen.via === deps.self, bytes: manifestBytes(dstat.status),
          fetchedBytes: dstat.fetchedBytes, reusedBytes: dstat.reusedBytes, digestsAgree: true, attempts: attempt, path: 'cold',
        },
      }
    }
    lastError = new ProtocolError('transfer-failed', 'the destination and source statuses differ')
  }
  return { error: lastError ?? new ProtocolError('transfer-failed', 'the transfer did not complete'), nextOfferAllowed: refused && !received }
}

/**
 * The descriptor sent with the Migration request. When it does not state the VM's memory and vCPUs
 * and the VM is on a host of this site (or handed in for placement), the host's definition of it does.
 */
async function descriptorWithDemand (deps: ControllerDeps, vmId: string, record: LocationRecord): Promise<unknown> {
  if (record.kind === 'partner' || Object.keys(demandOf(record.descriptor)).length > 0) return record.descriptor
  try {
    const host = deps.hosts.get(hostIdOf(record), vmId)
    return withDemand(record.descriptor, await host.demand?.(vmId))
  } catch (err) {
    deps.log({ event: 'demand-unknown', vm: vmId, error: (err as Error).message })
    return record.descriptor
  }
}

/** Whether a VM prepared for one offer serves another: the same destination site, and the same path (live or cold). */
function sameSite (a: Offer, b: Offer): boolean {
  return a.sealKey === b.sealKey && a.tlsFingerprint === b.tlsFingerprint && (a.live === true) === (b.live === true)
}

async function initiate (deps: ControllerDeps, chosen: Candidate, vmId: string, ticket: string): Promise<TransferStatus> {
  if (chosen.via === deps.self) return handleInitiateTransfer(deps, { sender: deps.self }, { vmId, ticket }, chosen.offer.ref)
  return askPartner(deps, chosen.via, 'initiate-transfer', { vmId, ticket }, TransferStatusSchema, { ref: chosen.offer.ref, timeoutMs: deps.limits.transferTimeoutMs })
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
