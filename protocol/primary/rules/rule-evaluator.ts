import { compare } from './comparison'
import type { Rule } from './rules-config'

/** One observed value of a VM's metric at a data time (a raw sample's ts, a processed delivery's `to`). */
export interface Point {
  vm: string
  metric: string
  /** The delivery's function, or "raw" for a raw sample. */
  selector: string
  ts: number
  value: number
  /** The value came from a sealed delivery: a firing never logs it. */
  sealed: boolean
}

export interface Firing {
  rule: Rule
  vm: string
  /** Data time at which the comparison had held for the rule's duration. */
  at: number
  /** Data time of the first point of the unbroken run of holding points. */
  since: number
  point: Point
}

interface RuleState {
  /** Newest data time seen: older points arrive late and are not evaluated (the run is judged in data-time order). */
  lastTs: number
  holdingSince?: number
  /** False once this run fired; true again when the comparison stops holding. */
  armed: boolean
  lastFiredAt?: number
  /** Wall time of the last firing: a cooldown holds in wall time too, whatever data times claim. */
  lastFiredWall?: number
}

export interface EvaluatorClock {
  /** Wall time (ms); Date.now unless a test drives it. */
  now: () => number
  /** Points whose data time is further ahead of `now()` than this are never evaluated. */
  maxClockSkewMs: number
}

const DEFAULT_CLOCK: EvaluatorClock = { now: Date.now, maxClockSkewMs: 60_000 }

/**
 * SLA rules over data time: a rule "X > N for D" fires at the first point at which every point of X
 * since some point t0 held and the point's time is ≥ t0 + D. One unbroken run fires once; a new run
 * fires once the previous firing is `cooldownMs` behind in data time and in wall time, so data times
 * in the future (a host's clock, or a forged delivery) cannot fire a rule again and again. A point
 * dated more than `maxClockSkewMs` ahead of the wall clock is ignored: it neither fires nor moves
 * the rule's newest data time.
 */
export class RuleEvaluator {
  private readonly states = new Map<string, RuleState>()

  /** `lastFirings` (rule → vm → data time) carries cooldowns over a restart (rule-firings.ts). */
  constructor (
    readonly rules: readonly Rule[],
    private readonly lastFirings = new Map<string, Map<string, number>>(),
    private readonly clock: EvaluatorClock = DEFAULT_CLOCK,
  ) {}

  /** Whether any rule reads this metric (so the caller opens and converts only what matters). */
  reads (metric: string): boolean {
    return this.rules.some((r) => r.when.metric === metric)
  }

  /** Feeds points (in any order; sorted here by data time) and returns the firings they cause. */
  observe (points: readonly Point[]): Firing[] {
    const firings: Firing[] = []
    const latest = this.clock.now() + this.clock.maxClockSkewMs
    const ordered = points.filter((p) => p.ts <= latest).sort((a, b) => a.ts - b.ts)
    for (const point of ordered) {
      for (const rule of this.rules) {
        if (!applies(rule, point)) continue
        const fired = this.step(rule, point)
        if (fired !== undefined) firings.push(fired)
      }
    }
    return firings
  }

  private step (rule: Rule, point: Point): Firing | undefined {
    const key = JSON.stringify([rule.name, point.vm])
    let state = this.states.get(key)
    if (state === undefined) {
      const lastFiredAt = this.lastFirings.get(rule.name)?.get(point.vm)
      // Only the data time of a firing before a restart is known; it stands in for its wall time (never later than now).
      state = { lastTs: -Infinity, armed: true, lastFiredAt, lastFiredWall: lastFiredAt === undefined ? undefined : Math.min(lastFiredAt, this.clock.now()) }
      this.states.set(key, state)
    }
    if (point.ts < state.lastTs) return undefined
    state.lastTs = point.ts
    if (!compare(rule.when.comparison, point.value)) {
      state.holdingSince = undefined
      state.armed = true
      return undefined
    }
    state.holdingSince ??= point.ts
    if (!state.armed || point.ts - state.holdingSince < rule.when.forMs) return undefined
    if (state.lastFiredAt !== undefined && point.ts - state.lastFiredAt < rule.cooldownMs) return undefined
    const wall = this.clock.now()
    if (state.lastFiredWall !== undefined && wall - state.lastFiredWall < rule.cooldownMs) return undefined
    state.armed = false
    state.lastFiredAt = point.ts
    state.lastFiredWall = wall
    return { rule, vm: point.vm, at: point.ts, since: state.holdingSince, point }
  }
}

function applies (rule: Rule, point: Point): boolean {
  if (rule.when.metric !== point.metric) return false
  if (rule.vm !== undefined && rule.vm !== point.vm) return false
  return rule.when.selector === undefined || rule.when.selector === point.selector
}
