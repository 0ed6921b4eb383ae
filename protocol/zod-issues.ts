import type { z } from 'zod'

/**
 * The one way fedvm words a refused config, descriptor or message: `FIELD.PATH: message`, the field
 * as a user writes it (`vms[0].feed`, `monitoring.rules[1].when`).
 */

/** A field as a user writes it, under `prefix` when given (`monitoring.ingest`). */
export function fieldPath (path: readonly PropertyKey[], prefix = ''): string {
  return path.reduce<string>((text, key) => typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key), prefix)
}

/** The field an issue is about; an unknown key is the field itself. */
export function issueField (issue: z.core.$ZodIssue, prefix = ''): string {
  const path = issue.code === 'unrecognized_keys' && issue.keys.length > 0 ? [...issue.path, issue.keys[0]] : issue.path
  return fieldPath(path, prefix) || '(top level)'
}

/** What is wrong, without the field. */
export function issueMessage (issue: z.core.$ZodIssue): string {
  return issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message
}

/** One problem as `FIELD.PATH: message`. */
export function describeIssue (issue: z.core.$ZodIssue, prefix = ''): string {
  return `${issueField(issue, prefix)}: ${issueMessage(issue)}`
}

/** Every problem of a failed parse, `FIELD.PATH: message` each, joined by "; ". */
export function describeIssues (error: z.ZodError, prefix = ''): string {
  return error.issues.map((issue) => describeIssue(issue, prefix)).join('; ')
}
