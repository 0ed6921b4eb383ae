import { parse, type Options } from 'csv-parse/sync'
import { FsError } from '../errors'

/** csv-parse settings for a KPI file; the fast path below must agree with them exactly. */
const CSV_OPTIONS: Options = {
  record_delimiter: ['\r\n', '\n'],
  trim: true,
  relax_column_count: true,
  skip_empty_lines: false,
}

// csv-parse's trim: on the left it skips these characters; on the right it calls String.prototype.trimEnd
// (all JS white space: \v, U+00A0, U+2028, U+3000, U+FEFF…), so the two sides differ.
const LEFT_TRIMMED = /^[ \t\f\r\n]+/
// csv-parse drops a last line holding nothing but left-trimmed blanks (so also the empty one after a final newline).
const BLANK_LAST_LINE = /^[ \t\f]*$/
// Quotes or a lone CR (not part of CRLF) need the full parser.
const NEEDS_FULL_PARSER = /"|\r(?!\n)/

/**
 * Splits a KPI file's text into its lines' fields (RFC 4180). The common unquoted case is split
 * by hand, since csv-parse's set-up costs ~40 µs per tiny file; anything quoted goes to csv-parse.
 * test/guestfs/csv/split-fields.test.ts checks that both agree exactly on random unquoted input.
 */
export function splitFields (text: string): string[][] {
  if (NEEDS_FULL_PARSER.test(text)) return splitWithCsvParse(text)
  const lines = text.split(/\r?\n/)
  if (BLANK_LAST_LINE.test(lines[lines.length - 1])) lines.pop()
  return lines.map((line) => line.split(',').map(trimField))
}

function trimField (field: string): string {
  return field.replace(LEFT_TRIMMED, '').trimEnd()
}

export function splitWithCsvParse (text: string): string[][] {
  try {
    return parse(text, CSV_OPTIONS) as string[][]
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new FsError('EINVAL', `not valid CSV: ${reason}`, { cause: err })
  }
}
