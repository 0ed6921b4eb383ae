import { toProtocolError } from '../../errors'
import type { Log } from '../../log'
import type { Delivery } from '../../relay/delivery'
import { MonitoringViewError } from '../errors'
import type { SealedOpener } from '../sealed-opener'
import { pointsOf } from './delivery-points'
import { RuleEvaluator, type EvaluatorClock, type Firing, type Point } from './rule-evaluator'
import type { RuleFirings } from './rule-firings'
import type { Rule } from './rules-config'

export interface RuleRunnerOptions {
  rules: readonly Rule[]
  opener: SealedOpener
  log: Log
  /** The owner's Controller for one VM (run-controller.ts, as `fedvm migrate --vm`). */
  forceMigration: (vmId: string) => Promise<unknown>
  /** Where firings are remembered across restarts (monitoring.db); in memory only without it. */
  firings?: RuleFirings
  /** Wall clock and the skew past which data times are ignored (default: Date.now, 60 s). */
  clock?: EvaluatorClock
}

/**
 * Evaluates the site's rules on each batch of newly stored primary deliveries, one batch after the
 * other (the evaluator's order is data time, so batches must not interleave). A firing is logged;
 * with action "forced-migration" the Controller runs for the VM, never twice at once for one VM.
 */
export class RuleRunner {
  private readonly evaluator: RuleEvaluator
  private queue: Promise<void> = Promise.resolve()
  private readonly migrating = new Set<string>()
  private readonly actions = new Set<Promise<void>>()

  constructor (private readonly options: RuleRunnerOptions) {
    this.evaluator = new RuleEvaluator(options.rules, options.firings?.load(), options.clock)
  }

  /** For relay.onStored: returns at once; the batch is evaluated after the ones before it. */
  readonly handle = (fresh: readonly Delivery[]): void => {
    const relevant = fresh.filter((d) => this.evaluator.reads(d.metric))
    if (relevant.length === 0) return
    this.queue = this.queue.then(() => this.evaluate(relevant)).catch((err) => {
      this.options.log({ event: 'rule-evaluation-failed', error: (err as Error).message })
    })
  }

  /** Resolves once every batch handed in so far is evaluated and every action it started has ended. */
  async idle (): Promise<void> {
    await this.queue
    await Promise.all([...this.actions])
  }

  private async evaluate (deliveries: readonly Delivery[]): Promise<void> {
    const points: Point[] = []
    for (const d of deliveries) {
      try {
        points.push(...pointsOf(await this.options.opener.open(d)))
      } catch (err) {
        if (!(err instanceof MonitoringViewError)) throw err
        // The id and the reason only: the sealed bytes and any key material stay out of the log.
        this.options.log({ event: 'rule-delivery-unreadable', id: d.id, vm: d.vm, metric: d.metric, code: err.code })
      }
    }
    for (const firing of this.evaluator.observe(points)) this.fire(firing)
  }

  private fire (f: Firing): void {
    const { rule, vm } = f
    this.options.firings?.record(rule.name, vm, f.at)
    this.options.log({
      event: 'rule-fired', rule: rule.name, when: rule.when.text, vm, metric: f.point.metric, selector: f.point.selector,
      since: f.since, at: f.at, heldMs: f.at - f.since, action: rule.action,
      ...(f.point.sealed ? { sealed: true } : { value: f.point.value }),
    })
    if (rule.action !== 'forced-migration') return
    if (this.migrating.has(vm)) {
      this.options.log({ event: 'rule-action-skipped', rule: rule.name, vm, reason: 'a forced migration of this VM is already running' })
      return
    }
    this.migrating.add(vm)
    const action = this.options.forceMigration(vm).then(
      (result) => { this.options.log({ event: 'rule-action-done', rule: rule.name, vm, action: rule.action, result }) },
      (err) => { this.options.log({ event: 'rule-action-failed', rule: rule.name, vm, action: rule.action, code: toProtocolError(err).code, detail: toProtocolError(err).message }) },
    ).finally(() => {
      this.migrating.delete(vm)
      this.actions.delete(action)
    })
    this.actions.add(action)
  }
}
