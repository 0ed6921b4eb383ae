import t from 'tap'
import { Registry, Gauge } from 'prom-client'
import { registerCollectors } from '../../../agent/collect'
import type { Collector, Sample } from '../../../host/collector'

// The scrape-time families write their own text (agent/collect/family-text.ts); it must be the
// bytes prom-client's Registry would write for the same values, in both exposition formats.

const domain = { domain: 'vm "quoted" \\ back\nslash é', uuid: '0721268a-b768-49dd-9180-49a74f86f484' }
const disk = { ...domain, target_device: 'vda' }
const samples: Sample[] = [
  { name: 'x_state', help: 'State\\ with "quotes"\nand a newline.', type: 'gauge', labels: domain, value: 1 },
  { name: 'x_state', help: '', type: 'gauge', labels: { domain: 'plain', uuid: 'u' }, value: 0 },
  { name: 'x_read_bytes_total', help: 'Bytes read.', type: 'counter', labels: disk, value: 118960128 },
  { name: 'x_read_bytes_total', help: 'Bytes read.', type: 'counter', labels: { ...disk, target_device: 'vdb' }, value: 2 ** 53 + 2 },
  { name: 'x_seconds_total', help: 'Seconds.', type: 'counter', labels: domain, value: 47.502633 },
  { name: 'x_odd', help: 'Odd values.', type: 'gauge', labels: {}, value: NaN },
  { name: 'x_odd', help: 'Odd values.', type: 'gauge', labels: { a: '' }, value: Infinity },
  { name: 'x_odd', help: 'Odd values.', type: 'gauge', labels: { a: 'b' }, value: -Infinity },
  { name: 'x_odd', help: 'Odd values.', type: 'gauge', labels: { a: 'c' }, value: -0.000001 },
  { name: 'x_odd', help: 'Odd values.', type: 'gauge', labels: { a: 'd' }, value: 1e21 }
]
const families: Collector['families'] = [
  { name: 'x_state', help: 'State\\ with "quotes"\nand a newline.', type: 'gauge' },
  { name: 'x_read_bytes_total', help: 'Bytes read.', type: 'counter' },
  { name: 'x_seconds_total', help: 'Seconds.', type: 'counter' },
  { name: 'x_odd', help: 'Odd values.', type: 'gauge' },
  { name: 'x_empty', help: 'Declared, never sampled.', type: 'gauge' }
]
const source: Collector = { name: 'src', families, collect: async () => samples }

interface Internals { getMetricsAsString: (metric: unknown) => Promise<string> }
const promClientText = Registry.prototype as unknown as Internals

/** The collector's duration differs between two collections: the only value not compared. */
const sameDuration = (text: string): string => text.replace(/^(fedvm_collector_duration_seconds\{[^}]*\}) [0-9.e-]+$/m, '$1 D')

/** Each family as our hook writes it and as prom-client's own formatter writes the same get(). */
async function bothTexts (registry: Registry): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for (const metric of registry.getMetricsAsArray()) {
    const ours = await (registry as unknown as Internals).getMetricsAsString(metric)
    const theirs = await promClientText.getMetricsAsString.call(registry, metric)
    out.push([sameDuration(ours), sameDuration(theirs)])
  }
  return out
}

for (const format of ['prometheus', 'openmetrics'] as const) {
  t.test(`the families' text is prom-client's, byte for byte (${format})`, async t => {
    const registry = new Registry()
    if (format === 'openmetrics') registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
    registerCollectors(registry, [source])
    t.not((registry as unknown as Internals).getMetricsAsString, promClientText.getMetricsAsString, 'the registry takes the families\' own text')
    await registry.metrics() // names as the registry shows them (OpenMetrics drops _total of counters)
    for (const [ours, theirs] of await bothTexts(registry)) t.equal(ours, theirs, ours.split('\n')[0])
    const text = await registry.metrics()
    t.match(text, /\nx_state\{domain="vm \\"quoted\\" \\\\ back\\nslash é",uuid="0721268a-b768-49dd-9180-49a74f86f484"\} 1\n/, 'escaped label values')
    t.match(text, format === 'openmetrics' ? /\nx_read_bytes_total\{domain=.*,target_device="vda"\} 118960128\n/ : /\nx_read_bytes_total\{.*target_device="vda"\} 118960128\n/)
    t.match(text, /\nx_odd Nan\nx_odd\{a=""\} \+Inf\nx_odd\{a="b"\} -Inf\nx_odd\{a="c"\} -0\.000001\nx_odd\{a="d"\} 1e\+21\n/)
  })
}

t.test('values are rendered on every scrape, never kept', async t => {
  let value = 1
  const labels = { domain: 'a' }
  const registry = new Registry()
  registerCollectors(registry, [{ name: 'v', families: [{ name: 'v_value', help: 'h', type: 'gauge' }], collect: async () => [{ name: 'v_value', help: 'h', type: 'gauge', labels, value: value++ }] }])
  t.match(await registry.metrics(), /\nv_value\{domain="a"\} 1\n/)
  t.match(await registry.metrics(), /\nv_value\{domain="a"\} 2\n/, 'same labels object, new value')
})

t.test('a registry with default labels keeps prom-client\'s own formatting, and other metrics are untouched', async t => {
  const registry = new Registry()
  registry.setDefaultLabels({ host: 'h1' })
  const gauge = new Gauge({ name: 'other_value', help: 'h', labelNames: ['k'], registers: [registry] })
  gauge.set({ k: 'v' }, 3)
  registerCollectors(registry, [source])
  for (const [ours, theirs] of await bothTexts(registry)) t.equal(ours, theirs, ours.split('\n')[0])
  const text = await registry.metrics()
  t.match(text, /\nx_state\{domain="plain",uuid="u",host="h1"\} 0\n/, 'the default label, where prom-client places it')
  t.match(text, /\nother_value\{k="v",host="h1"\} 3\n/)
})

t.test('registering collectors twice on one registry hooks it once', async t => {
  const registry = new Registry()
  registerCollectors(registry, [source])
  const hook = (registry as unknown as Internals).getMetricsAsString
  registerCollectors(registry, [{ name: 'other', collect: async () => [] }], { log: () => {} })
  t.equal((registry as unknown as Internals).getMetricsAsString, hook)
})
