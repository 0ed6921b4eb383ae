import { z } from 'zod'
import { isSafeFileName } from '../../../host/vm-folder/vm-folder'
import { parseRuleExpression, type RuleCondition } from './rule-expression'

export const RULE_ACTIONS = ['log', 'forced-migration'] as const
export type RuleAction = typeof RULE_ACTIONS[number]

/** After a firing, the same rule does not fire again for the same VM within this much data time. */
export const DEFAULT_COOLDOWN_MS = 5 * 60_000

/**
 * One SLA-style rule of `monitoring.rules`, e.g.
 * `{ "name": "busy", "when": "kpi:users.current_users > 1000 for 30s", "action": "forced-migration" }`.
 * Without `vm` it applies to every VM this site is the primary site of.
 */
const RuleSchema = z.object({
  name: z.string().min(1).max(128),
  when: z.string().min(1).max(1024).transform((text, ctx): RuleCondition & { text: string } => {
    try {
      return { text, ...parseRuleExpression(text) }
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
  }),
  vm: z.string().max(128).refine(isSafeFileName, 'must be a VM id (letters, digits, ._+-)').optional(),
  action: z.enum(RULE_ACTIONS).default('log'),
  cooldownMs: z.number().int().min(0).max(365 * 24 * 3600_000).default(DEFAULT_COOLDOWN_MS),
}).strict()

export const RulesSchema = z.array(RuleSchema).max(1000).superRefine((rules, ctx) => {
  const seen = new Set<string>()
  rules.forEach((rule, i) => {
    if (seen.has(rule.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${JSON.stringify(rule.name)} appears twice` })
    seen.add(rule.name)
  })
})

export type Rule = z.infer<typeof RuleSchema>
