import type { z } from 'zod'

/** Names the field of each problem the way a user writes it: `vms[0].feed: …`. */
export function describeIssues (error: z.ZodError): string {
  return error.issues.map((issue) => {
    const path = issue.path.reduce<string>((text, key) => typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key), '')
    return `${path || '(top level)'}: ${issue.message}`
  }).join('; ')
}
