import { FsError } from '../errors'
import { splitFields } from './split-fields'
import { typedValue, type KpiValue } from './typed-value'
import { foldCase } from '../sql-names'

/** One sample of an unencrypted KPI: the column names and the typed values, in file order. */
export interface KpiSample {
  columns: string[]
  values: KpiValue[]
}

// The commit time, and SQLite's names for the rowid (which carries the commit sequence).
const RESERVED_COLUMNS = new Set(['ts', 'rowid', 'oid', '_rowid_'])
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Parses a KPI file per DESIGN.md Contract 1: one or two lines of CSV; a two-line file is a header
 * then values, a one-line file is values with an empty header; unlabelled columns are `columnN`.
 * Throws FsError('EINVAL') naming the reason for anything it refuses.
 */
export function parseKpiCsv (content: Uint8Array): KpiSample {
  const lines = splitFields(decodeUtf8(content))
  if (lines.length === 0) throw new FsError('EINVAL', 'empty file: a KPI needs a value line')
  if (lines.length > 2) throw new FsError('EINVAL', `${lines.length} lines: a KPI file has a header line and a value line at most`)
  const values = lines[lines.length - 1]
  const labels = lines.length === 2 ? lines[0] : []
  const columns = columnNames(labels, values.length)
  return { columns, values: values.map(typedValue) }
}

function decodeUtf8 (content: Uint8Array): string {
  try {
    return utf8.decode(content)
  } catch (err) {
    throw new FsError('EINVAL', 'content is not UTF-8 text (sealed values belong in encrypted/)', { cause: err })
  }
}

/** An empty header line labels nothing; otherwise it must label exactly as many columns as there are values. */
function columnNames (labels: string[], count: number): string[] {
  const unlabelled = labels.length === 0 || (labels.length === 1 && labels[0] === '')
  if (!unlabelled && labels.length !== count) {
    throw new FsError('EINVAL', `header has ${labels.length} columns but the value line has ${count}`)
  }
  const columns: string[] = []
  const seen = new Set<string>()
  for (let i = 0; i < count; i++) {
    const name = unlabelled || labels[i] === '' ? `column${i + 1}` : labels[i]
    const folded = foldCase(name)
    if (RESERVED_COLUMNS.has(folded)) throw new FsError('EINVAL', `column name "${name}" is reserved (ts is the commit time; rowid, oid, _rowid_ the commit sequence)`)
    if (CONTROL_CHARACTER.test(name)) throw new FsError('EINVAL', `column name ${JSON.stringify(name)} has a control character`)
    if (seen.has(folded)) throw new FsError('EINVAL', `duplicate column name "${name}"`)
    seen.add(folded)
    columns.push(name)
  }
  return columns
}
