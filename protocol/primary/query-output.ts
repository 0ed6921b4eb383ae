import { stringifyExact } from '../exact-json'
import type { OpenedDelivery } from './sealed-opener'

/** What `fedvm monitor query` prints as JSON: the deliveries, sealed ones opened, times both ways. */
export function queryJson (q: { vm: string, metric?: string, since?: number, until?: number }, deliveries: readonly OpenedDelivery[]): string {
  // stringifyExact: a 64-bit KPI integer prints digit for digit.
  return `${stringifyExact({
    vm: q.vm,
    ...(q.metric !== undefined ? { metric: q.metric } : {}),
    ...(q.since !== undefined ? { since: new Date(q.since).toISOString() } : {}),
    ...(q.until !== undefined ? { until: new Date(q.until).toISOString() } : {}),
    count: deliveries.length,
    deliveries: deliveries.map(({ wasSealed, ...d }) => ({ ...d, time: new Date(d.to).toISOString(), sealed: wasSealed })),
  }, 2)}\n`
}

const HEADER = ['TIME', 'METRIC', 'FUNCTION', 'VALUE', 'SEALED']

/** The table form: one line per value (each raw sample at its own time, a processed value at its window's end). */
export function queryTable (deliveries: readonly OpenedDelivery[]): string {
  const rows: string[][] = []
  for (const d of deliveries) {
    const sealed = d.wasSealed ? 'yes' : ''
    if (d.format === 'processed') rows.push([iso(d.to), cell(d.metric), d.function ?? '', String(d.value ?? ''), sealed])
    else for (const s of d.samples ?? []) rows.push([iso(s.ts), cell(d.metric), 'raw', cell(String(s.value)), sealed])
  }
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  return `${[line(HEADER), ...rows.map(line)].join('\n')}\n`
}

/** Text from a VM (metric names, sealed text values) is quoted when it holds spaces or control characters: one line per value, no terminal escapes. */
function cell (text: string): string {
  return /^[\x21-\x7e\u00a0-\uffff]+$/.test(text) && !/[\u2028\u2029]/.test(text) ? text : JSON.stringify(text)
}

function iso (ms: number): string {
  return new Date(ms).toISOString()
}
