import { PREDICATE_OPS_TEXT, type Comparison } from './comparison'
import { parseDurationText } from '../duration-text'
import { RuleExpressionError } from './errors'

/** Which deliveries a rule reads: the processed ones of one function, or the raw samples. */
export const RULE_SELECTORS = ['min', 'max', 'mean', 'median', 'raw'] as const
export type RuleSelector = typeof RULE_SELECTORS[number]

/** A parsed `when`: METRIC OP NUMBER [for DURATION], the metric optionally wrapped as `median(METRIC)`. */
export interface RuleCondition {
  metric: string
  /** Only deliveries of this function ("raw": raw samples); undefined: every delivery of the metric. */
  selector?: RuleSelector
  comparison: Comparison
  /** How long (data time) the comparison must hold without a break before the rule fires; 0 = at once. */
  forMs: number
}

// A metric is a bare token (no spaces, parentheses or comparison signs) or a JSON string for odd KPI names.
const METRIC = String.raw`("(?:[^"\\]|\\.)*"|[^\s<>=!()"]+)`
const NUMBER = String.raw`([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)`
const EXPRESSION = new RegExp(String.raw`^\s*(?:(\w+)\(\s*${METRIC}\s*\)|${METRIC})\s*(${PREDICATE_OPS_TEXT})\s*${NUMBER}(?:\s+for\s+(\S+(?:\s*[a-zA-Z]+)?))?\s*$`)

/** Parses a rule's `when`, e.g. `kpi:users.current_users > 1000 for 30s` or `median(cpu.time) >= 0.9`. */
export function parseRuleExpression (text: string): RuleCondition {
  const match = EXPRESSION.exec(text)
  if (match === null) {
    throw new RuleExpressionError(`${JSON.stringify(text)} is not METRIC OP NUMBER [for DURATION] (OP one of ${PREDICATE_OPS_TEXT.split('|').join(' ')}; e.g. "kpi:users.current_users > 1000 for 30s")`)
  }
  const [, fn, wrapped, bare, op, number, duration] = match
  let selector: RuleSelector | undefined
  if (fn !== undefined) {
    if (!(RULE_SELECTORS as readonly string[]).includes(fn)) throw new RuleExpressionError(`${fn}(…) is not one of ${RULE_SELECTORS.join(', ')}`)
    selector = fn as RuleSelector
  }
  const metric = metricName(wrapped ?? bare)
  const value = Number(number)
  if (!Number.isFinite(value)) throw new RuleExpressionError(`${number} is not a finite number`)
  let forMs = 0
  if (duration !== undefined) {
    const parsed = parseDurationText(duration)
    if (parsed === undefined) throw new RuleExpressionError(`"for ${duration}": the duration needs a unit, e.g. 30s, 5m, 1h, 500ms`)
    forMs = parsed
  }
  return { metric, ...(selector ? { selector } : {}), comparison: { op: op as Comparison['op'], value }, forMs }
}

function metricName (token: string): string {
  if (!token.startsWith('"')) return token
  let name: unknown
  try {
    name = JSON.parse(token)
  } catch (err) {
    throw new RuleExpressionError(`${token} is not a valid quoted metric name`, { cause: err })
  }
  if (typeof name !== 'string' || name === '') throw new RuleExpressionError('the quoted metric name is empty')
  return name
}
