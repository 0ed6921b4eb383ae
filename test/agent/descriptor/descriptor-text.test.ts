import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { descriptorFromText } from '../../../agent/descriptor/descriptor-text'
import { AgentError } from '../../../agent/errors'
import { DescriptorFormatError } from '../../../protocol/ovf/errors'

// Contract 3: the descriptor is JSON or an OVF envelope; "invalid specifiers are refused at load with a
// message naming the field": in an envelope, the field is an element or attribute.

const FIXTURE = readFileSync(join(__dirname, '..', '..', 'protocol', 'ovf', 'fixtures', 'web-1.ovf'), 'utf8')
const SECTION = 'Envelope/VirtualSystem/fedvm:MonitoringSection'

function refusal (text: string): Error {
  try {
    descriptorFromText(text, 'web-1.ovf')
  } catch (err) {
    return err as Error
  }
  throw new Error('accepted')
}

t.test('an envelope gives the same descriptor as its JSON, defaults applied by the schema', async (t) => {
  const fromOvf = descriptorFromText(FIXTURE, 'web-1.ovf')
  t.equal(fromOvf.id, 'web-1')
  t.strictSame(fromOvf.resources, { memoryMiB: 2048, vcpus: 2 })
  t.equal(fromOvf.monitoring[1].encrypt, false, 'encrypt defaults to false, as in JSON')
  const fromJson = descriptorFromText(JSON.stringify(fromOvf), 'web-1.json')
  t.strictSame(fromJson, fromOvf)
})

t.test('a specifier the schema refuses: the message names its attribute in the envelope', async (t) => {
  const cases: Array<[what: string, from: string, to: string, message: RegExp]> = [
    ['processed without a function', 'format="processed" function="median"', 'format="processed"', /^web-1\.ovf: Envelope\/VirtualSystem\/fedvm:MonitoringSection\/fedvm:Specifier\[1\]\/@function: processed format needs a function/],
    ['an unknown function', 'function="median"', 'function="p99"', new RegExp(`^web-1\\.ovf: ${SECTION}/fedvm:Specifier\\[1\\]/@function: `)],
    ['an unknown predicate', 'op="&gt;"', 'op="~"', new RegExp(`${SECTION}/fedvm:Specifier\\[1\\]/fedvm:When/@op: `)],
    ['a missing interval', 'monitoringIntervalMs="0" ', '', new RegExp(`${SECTION}/fedvm:Specifier\\[2\\]/@monitoringIntervalMs: `)],
    ['an unknown attribute', 'format="raw"/>', 'format="raw" colour="red"/>', new RegExp(`${SECTION}/fedvm:Specifier\\[2\\]: .*colour`)],
    ['a predicate on an encrypted KPI', 'format="raw" encrypt="true"/>', 'format="raw" encrypt="true"><fedvm:When op="&gt;" value="1"/></fedvm:Specifier>', new RegExp(`${SECTION}/fedvm:Specifier\\[3\\]/fedvm:When: .*opaque`)],
    ['a public key that is not one', 'publicKey="7x5f', 'publicKey="!!', new RegExp(`${SECTION}/fedvm:PrimarySite/@publicKey: must be a base64 32-byte key`)],
    ['a primary site without an id', 'fedvm:PrimarySite id="site-a"', 'fedvm:PrimarySite', new RegExp(`${SECTION}/fedvm:PrimarySite/@id: `)],
  ]
  for (const [what, from, to, message] of cases) {
    t.ok(FIXTURE.includes(from), `the fixture holds ${from}`)
    const err = refusal(FIXTURE.replace(from, to))
    t.ok(err instanceof AgentError && err.code === 'DESCRIPTOR_INVALID', `${what}: DESCRIPTOR_INVALID`)
    t.match(err.message, message, what)
  }
})

t.test('a malformed envelope: the file, then the element', async (t) => {
  const err = refusal(FIXTURE.replace('<rasd:VirtualQuantity>2048', '<rasd:VirtualQuantity>2 GB'))
  t.ok(err instanceof DescriptorFormatError)
  t.equal(err.message, 'web-1.ovf: Envelope/VirtualSystem/VirtualHardwareSection/Item[2]/rasd:VirtualQuantity: must be a positive integer (found "2 GB")')
  t.equal((err as DescriptorFormatError).code, 'DESCRIPTOR_INVALID')
})

t.test('JSON keeps naming the field; text in neither form is refused', async (t) => {
  t.match(refusal('{"id":"web-1","primarySite":{"id":"a","publicKey":"x"}}').message, /^web-1\.ovf: primarySite\.publicKey: /)
  const err = refusal('id: web-1')
  t.equal((err as DescriptorFormatError).code, 'DESCRIPTOR_INVALID')
  t.match(err.message, /^web-1\.ovf: neither JSON nor an OVF envelope/)
})
