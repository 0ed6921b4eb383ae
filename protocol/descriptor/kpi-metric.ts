/** The KPI a specifier reads: its table (the guest's file name) and column; no column for an encrypted KPI. */
export interface KpiTarget {
  table: string
  column?: string
}

const PREFIX = 'kpi:'
const QUOTE = '"'
const SEPARATOR = '.'

/**
 * Reads `kpi:TABLE.COLUMN` (a column of an unencrypted KPI) or `kpi:TABLE` (an encrypted KPI).
 * guestfs takes any file name as a table and any CSV label as a column, dots and quotes included,
 * so a name holding `.` or `"` is written quoted the way SQL quotes identifiers: `"revenue.v2"`,
 * with `""` for a quote inside. Thus `kpi:revenue.v2` is column v2 of table revenue and
 * `kpi:"revenue.v2"` the encrypted KPI revenue.v2; a bare `kpi:app.v2.latency` could be read two
 * ways and is refused. Returns the target, or why the text is not one (for the descriptor's error).
 */
export function parseKpiMetric (metric: string): KpiTarget | { error: string } {
  if (!metric.startsWith(PREFIX)) return { error: `a KPI is kpi:TABLE.COLUMN or kpi:TABLE, not ${JSON.stringify(metric)}` }
  const text = metric.slice(PREFIX.length)
  const table = readName(text, 0, 'table')
  if ('error' in table) return table
  if (table.end === text.length) return { table: table.name }
  if (text[table.end] !== SEPARATOR) return { error: `${JSON.stringify(metric)}: only .COLUMN may follow the quoted table name` }
  const column = readName(text, table.end + 1, 'column')
  if ('error' in column) return column
  if (column.end !== text.length) {
    const columnStart = table.end + 1
    if (text[columnStart] === QUOTE) return { error: `${JSON.stringify(metric)}: nothing may follow the quoted column name` }
    if (text[0] === QUOTE) return { error: `${JSON.stringify(metric)}: a column name holding a dot is quoted, e.g. kpi:${text.slice(0, columnStart)}"${text.slice(columnStart)}"` }
    return { error: `${JSON.stringify(metric)} could name more than one table and column: quote the name that holds a dot, e.g. kpi:"${text.slice(0, column.end)}".${text.slice(column.end + 1)} or kpi:${text.slice(0, table.end)}."${text.slice(columnStart)}"` }
  }
  return { table: table.name, column: column.name }
}

/** Writes a KPI target back as metric text: the inverse of parseKpiMetric, quoting only where needed. */
export function formatKpiMetric (target: KpiTarget): string {
  const name = (part: string) => (part === '' || part.includes(SEPARATOR) || part.includes(QUOTE) ? `"${part.replaceAll(QUOTE, QUOTE + QUOTE)}"` : part)
  return `${PREFIX}${name(target.table)}${target.column === undefined ? '' : SEPARATOR + name(target.column)}`
}

/** One name from `start`: quoted up to its closing quote, or bare up to the next dot (or the end). */
function readName (text: string, start: number, what: 'table' | 'column'): { name: string, end: number } | { error: string } {
  if (text[start] !== QUOTE) {
    let end = text.indexOf(SEPARATOR, start)
    if (end < 0) end = text.length
    const name = text.slice(start, end)
    if (name === '') return { error: `the ${what} name is empty` }
    if (name.includes(QUOTE)) return { error: `the ${what} name ${JSON.stringify(name)} holds a double quote: write it quoted, with "" for each quote inside` }
    return { name, end }
  }
  let name = ''
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] !== QUOTE) {
      name += text[i]
    } else if (text[i + 1] === QUOTE) {
      name += QUOTE
      i++
    } else {
      return name === '' ? { error: `the ${what} name is empty` } : { name, end: i + 1 }
    }
  }
  return { error: `the quoted ${what} name has no closing quote` }
}
