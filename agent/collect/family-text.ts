/**
 * The text of one scrape-time family, byte for byte as prom-client 15's Registry formats a metric
 * object (`# HELP`, `# TYPE`, one line per sample; OpenMetrics counters get `_total` per line), but
 * without its per-line work (a destructured value, three arrays and a join per line): with 1,000
 * domains (~39,000 lines) that work was half of a libvirt scrape's CPU. The unit test compares
 * this text with prom-client's own formatting of the same values, so a prom-client change shows.
 */
import type { Sample } from '../../host/collector'

/**
 * The rendered `name="value",...` of a labels object, kept while that object lives. A collector
 * passes one labels object for all series of a domain or device, so each is escaped once per
 * collection. Only label text is kept: values are rendered on every scrape.
 */
const labelText = new WeakMap<Record<string, string>, string>()

function renderLabels (labels: Record<string, string>): string {
  let text = labelText.get(labels)
  if (text === undefined) {
    text = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')
    labelText.set(labels, text)
  }
  return text
}

export interface FamilyHead { name: string, help: string, type: 'counter' | 'gauge' }

/**
 * `family.name` is the name the registry shows (it drops `_total` of counters for OpenMetrics).
 * The pieces are joined once into one flat string: `+=` per line would build a rope of ~4 nodes per
 * line that stays alive (and is copied by every young-generation GC) until the registry joins it.
 */
export function familyText (family: FamilyHead, samples: readonly Sample[], openMetrics: boolean): string {
  const name = escapeString(family.name)
  const lineName = `\n${name}${openMetrics && family.type === 'counter' ? '_total' : ''}`
  const parts: string[] = new Array(1 + samples.length * 5)
  parts[0] = `# HELP ${name} ${escapeString(family.help)}\n# TYPE ${name} ${family.type}`
  let k = 1
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]
    const labels = renderLabels(s.labels)
    parts[k++] = lineName
    parts[k++] = labels === '' ? ' ' : '{'
    parts[k++] = labels
    parts[k++] = labels === '' ? '' : '} '
    parts[k++] = valueText(s.value)
  }
  return parts.join('')
}

/** prom-client's getValueAsString (its NaN is spelled `Nan`, which Prometheus' parser accepts). */
function valueText (value: number): string {
  if (Number.isNaN(value)) return 'Nan'
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf'
  return `${value}`
}

function escapeString (s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function escapeLabelValue (s: string): string {
  return typeof s === 'string' ? escapeString(s).replace(/"/g, '\\"') : s
}
