import type { z } from 'zod'

/** A field as a user writes it: `vms[0].feed`, under `prefix` when given (`monitoring.ingest`). */
export function fieldPath (path: readonly PropertyKey[], prefix = ''): string {
  return path.reduce<string>((text, key) => typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key), prefix)
}

/** What is wrong, without the field; an unknown key says it is not a known setting. */
export function issueMessage (issue: z.core.$ZodIssue): string {
  return issue.code === 'unrecognized_keys' ? `${issue.message}: not a known setting` : issue.message
}

/** One problem as `FIELD.PATH: message`. */
export function describeIssue (issue: z.core.$ZodIssue, prefix = ''): string {
  return `${fieldPath(issue.path, prefix) || '(top level)'}: ${issueMessage(issue)}`
}

/** Every problem of a failed parse, `FIELD.PATH: message` each, joined by "; ". */
export function describeIssues (error: z.ZodError, prefix = ''): string {
  return error.issues.map((issue) => describeIssue(issue, prefix)).join('; ')
}
