import { backoffMs } from '../backoff'
import { toProtocolError } from '../errors'
import type { TokenRecord } from '../proxy/token-record'
import type { Caller } from './caller'
import type { ControllerDeps } from './controller'
import { handleTransferAbort, handleTransferCommit } from './destination'
import { askUp, handleMigrationOutcome, type OutcomeDeps } from './migration-outcome'
import type { OutcomeAnswer } from './partner-answers'
import { decide, settleMigration } from './settle'
import { handleTransferCancel, handleTransferConfirm } from './source'

/**
 * Ends every doubt a crash or a partition left, without anyone's help: as Controller it decides abort
 * for migrations it had not decided when it stopped, and carries recorded decisions to sides that had
 * not acted on them; as Destination or Source it asks the Controller (up the chain) what was decided
 * for a transfer it holds. Each item is retried with backoff until it is settled. The site daemon
 * calls tick() at start and then often; a tick does only what is due.
 */
export interface ResolverDeps extends ControllerDeps, OutcomeDeps {
  tokens: ControllerDeps['tokens'] & { inDoubtTokens: () => TokenRecord[] }
  routes: ControllerDeps['routes'] & OutcomeDeps['routes']
  locations: ControllerDeps['locations'] & OutcomeDeps['locations']
  limits: ControllerDeps['limits'] & { settleRetryMaxMs: number }
}

const FIRST_RETRY_MS = 1000

export class Resolver {
  private readonly due = new Map<string, { failures: number, at: number }>()
  private ticking: Promise<void> | undefined
  private ticks = 0

  constructor (private readonly deps: ResolverDeps, private readonly now: () => number = Date.now) {}

  /** One pass over what is due; a pass still running makes this a no-op. */
  tick (): Promise<void> {
    this.ticking ??= this.pass().finally(() => { this.ticking = undefined; this.ticks++ })
    return this.ticking
  }

  private async pass (): Promise<void> {
    const { deps } = this
    const seen = new Set<string>()
    for (const record of deps.migrations.unsettledMigrations()) {
      if (deps.active.has(record.vmId)) continue
      seen.add(`migration:${record.id}`)
      await this.attempt(`migration:${record.id}`, async () => {
        // The Controller that was deciding it is gone: nothing was committed, so abort.
        if (record.decision === 'undecided') decide(deps, record, 'abort')
        const { record: after } = await settleMigration(deps, record.id)
        return after.destinationSettled && after.sourceSettled
      })
    }
    for (const token of deps.tokens.inDoubtTokens()) {
      if (deps.transfers.pulls.has(token.token)) continue
      seen.add(`token:${token.token}`)
      // A Source held for a running migration hears the decision from the Controller's push; it asks
      // by itself at start and once its token has expired (the Controller may have lost track of it).
      const firstAt = token.role === 'source' ? token.expiresAt : undefined
      await this.attempt(`token:${token.token}`, async () => this.resolveToken(token), firstAt)
    }
    // Settled some other way (the Controller's push reached it): forget its backoff.
    for (const key of this.due.keys()) if (!seen.has(key)) this.due.delete(key)
  }

  /** Asks the Controller about a held transfer and acts on a decision; false while it is pending. */
  private async resolveToken (token: TokenRecord): Promise<boolean> {
    const { deps } = this
    const answer = await this.ask(token)
    if (answer.decision === 'pending') return false
    // Acting for the site that asked for the token, as its push of the decision would have.
    const caller: Caller = { sender: token.requester }
    const vmId = token.vmId
    deps.log({ event: 'in-doubt-resolved', role: token.role, vm: vmId, decision: answer.decision })
    if (token.role === 'destination') {
      if (answer.decision === 'commit') await handleTransferCommit(deps, caller, { vmId }, token.token)
      else await handleTransferAbort(deps, caller, { vmId }, token.token)
    } else if (answer.decision === 'commit') {
      await handleTransferConfirm(deps, caller, { vmId, token: token.token })
    } else {
      await handleTransferCancel(deps, caller, { vmId, token: token.token })
    }
    return true
  }

  private async ask (token: TokenRecord): Promise<OutcomeAnswer> {
    const body = { vmId: token.vmId, ref: token.token }
    if (token.requester === this.deps.self) return handleMigrationOutcome(this.deps, { sender: this.deps.self }, body)
    return askUp(this.deps, token.requester, token.vmId, token.token)
  }

  /** Runs `action` for `key` when due; settled (true) forgets it, pending or failed waits longer. */
  private async attempt (key: string, action: () => Promise<boolean>, firstAt?: number): Promise<void> {
    const now = this.now()
    let state = this.due.get(key)
    if (state === undefined) {
      // Found at start: at once. Appearing later (a migration under way): after a first wait.
      state = { failures: 0, at: this.ticks === 0 ? now : Math.max(now + FIRST_RETRY_MS, firstAt ?? 0) }
      this.due.set(key, state)
    }
    if (state.at > now) return
    let settled = false
    try {
      settled = await action()
    } catch (err) {
      const e = toProtocolError(err)
      this.deps.log({ event: 'resolve-failed', item: key.slice(0, key.indexOf(':')), code: e.code, retryable: e.retryable })
    }
    if (settled) {
      this.due.delete(key)
      return
    }
    state.failures++
    state.at = this.now() + backoffMs(state.failures - 1, { minMs: FIRST_RETRY_MS, maxMs: this.deps.limits.settleRetryMaxMs, jitter: true })
  }
}
