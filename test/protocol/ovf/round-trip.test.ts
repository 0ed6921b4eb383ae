import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DescriptorFormatError } from '../../../protocol/ovf/errors'
import { ovfToDescriptor } from '../../../protocol/ovf/read-ovf'
import { descriptorToOvf, type DescriptorFields } from '../../../protocol/ovf/write-ovf'

// To-ovf and from-ovf convert "without loss of what fedvm uses (id, primarySite, resources,
// monitoring specifiers with every field)".

const FIXTURE = readFileSync(join(__dirname, 'fixtures', 'web-1.ovf'), 'utf8')

t.test('the package\'s descriptor survives to-ovf then from-ovf', async (t) => {
  const { descriptor } = ovfToDescriptor(FIXTURE)
  const written = descriptorToOvf(descriptor as unknown as DescriptorFields)
  t.strictSame(ovfToDescriptor(written).descriptor, descriptor)
  t.match(written, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Envelope xmlns="http:\/\/schemas\.dmtf\.org\/ovf\/envelope\/2"/)
  t.match(written, /<fedvm:MonitoringSection ovf:required="false">\s*<Info>/, 'the section is optional to OVF tools and starts with Info as OVF sections do')
  t.match(written, /<rasd:AllocationUnits>byte \* 2\^20<\/rasd:AllocationUnits>/)
})

/** XML 1.0 cannot carry C0 controls (tab, newline and carriage return aside), lone surrogates or U+FFFE/U+FFFF. */
const xmlString = (min: number): fc.Arbitrary<string> => fc.tuple(
  fc.constantFrom('', '\t', '\n', '\r\n', ' <&>"\''),
  fc.string({ unit: 'grapheme', minLength: min }).filter((s) => !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(s)),
).map(([awkward, s]) => awkward + s)

const specifier = fc.record({
  metric: xmlString(1),
  monitoringIntervalMs: fc.nat(),
  deliveryIntervalMs: fc.nat(),
  format: fc.constantFrom('raw', 'processed'),
  function: fc.option(fc.constantFrom('min', 'max', 'mean', 'median'), { nil: undefined }),
  // JSON has no -0, so neither does a descriptor.
  when: fc.option(fc.record({ op: fc.constantFrom('<', '<=', '>', '>=', '==', '!='), value: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((v) => !Object.is(v, -0)) }), { nil: undefined }),
  encrypt: fc.option(fc.boolean(), { nil: undefined }),
}, { requiredKeys: ['metric', 'monitoringIntervalMs', 'deliveryIntervalMs', 'format'] })

const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const descriptor = fc.record({
  id: xmlString(1).filter((s) => s.trim() !== ''),
  primarySite: fc.record({ id: xmlString(0), publicKey: xmlString(0) }),
  resources: fc.option(fc.record({ memoryMiB: positive, vcpus: positive }, { requiredKeys: [] }), { nil: undefined }),
  monitoring: fc.array(specifier, { maxLength: 4 }),
}, { requiredKeys: ['id', 'primarySite', 'monitoring'] })

/** What from-ovf gives back: the same fields, `resources` only when it names something. */
function expected (d: DescriptorFields): unknown {
  const { resources, ...rest } = d
  const kept = resources === undefined || Object.keys(resources).length === 0 ? rest : { ...rest, resources }
  return { ...kept, monitoring: d.monitoring.map((spec) => Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined))) }
}

t.test('any descriptor survives the round trip: text with markup, spaces and newlines, any double in a predicate', async (t) => {
  fc.assert(fc.property(descriptor, (d) => {
    const clean = JSON.parse(JSON.stringify(d)) as DescriptorFields
    t.strictSame(ovfToDescriptor(descriptorToOvf(clean)).descriptor, expected(clean))
  }), { numRuns: 300 })
})

t.test('to-ovf refuses what the envelope cannot carry, naming it', async (t) => {
  const base: DescriptorFields = { id: 'web-1', primarySite: { id: 'a', publicKey: 'k' }, monitoring: [] }
  const cases: Array<[DescriptorFields, RegExp]> = [
    [{ ...base, resources: { memoryMiB: 0 } }, /^resources\.memoryMiB: must be a positive integer/],
    [{ ...base, resources: { vcpus: 1.5 } }, /^resources\.vcpus: must be a positive integer/],
    [{ ...base, id: 'web\u0001' }, /"web\\u0001": holds a character XML 1\.0 cannot carry/],
  ]
  for (const [d, message] of cases) {
    const err = t.throws(() => descriptorToOvf(d))
    t.ok(err instanceof DescriptorFormatError, 'a DescriptorFormatError')
    t.match((err as Error).message, message)
  }
})
