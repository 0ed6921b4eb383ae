import t from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runFedvm } from '../../support/guestfs-mount'

// `fedvm descriptor from-ovf FILE.ovf` prints the JSON descriptor, `to-ovf FILE.json` an
// envelope; the round trip loses nothing fedvm uses. Runs the built CLI (dist/).

const FIXTURE = join(__dirname, '..', '..', 'protocol', 'ovf', 'fixtures', 'web-1.ovf')

async function tempDir (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-descriptor-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('from-ovf, to-ovf, from-ovf: the same JSON descriptor each time', async (t) => {
  const dir = await tempDir(t)
  const first = await runFedvm(['descriptor', 'from-ovf', FIXTURE])
  t.equal(first.code, 0, first.stderr)
  const json = JSON.parse(first.stdout.toString('utf8'))
  t.equal(json.id, 'web-1')
  t.strictSame(json.resources, { memoryMiB: 2048, vcpus: 2 })
  t.equal(json.monitoring.length, 3)
  await writeFile(join(dir, 'web-1.json'), first.stdout)

  const ovf = await runFedvm(['descriptor', 'to-ovf', join(dir, 'web-1.json')])
  t.equal(ovf.code, 0, ovf.stderr)
  t.equal(ovf.stderr, '', 'nothing left behind')
  t.match(ovf.stdout.toString('utf8'), /<fedvm:MonitoringSection ovf:required="false">/)

  const again = await runFedvm(['descriptor', 'from-ovf', '-'], ovf.stdout)
  t.equal(again.code, 0, again.stderr)
  t.strictSame(JSON.parse(again.stdout.toString('utf8')), json)
})

t.test('to-ovf --into: the package a tool exported, with fedvm\'s section added', async (t) => {
  const dir = await tempDir(t)
  const fixture = await readFile(FIXTURE, 'utf8')
  const exported = fixture.replace(/ *<fedvm:MonitoringSection[^]*<\/fedvm:MonitoringSection>\n/, '')
  await writeFile(join(dir, 'exported.ovf'), exported)
  const json = (await runFedvm(['descriptor', 'from-ovf', FIXTURE])).stdout
  await writeFile(join(dir, 'web-1.json'), json)
  const result = await runFedvm(['descriptor', 'to-ovf', join(dir, 'web-1.json'), '--into', join(dir, 'exported.ovf')])
  t.equal(result.code, 0, result.stderr)
  const added = result.stdout.toString('utf8')
  t.match(added, /<vbox:Machine ovf:required="false"/, 'the tool\'s own section is still there')
  const back = await runFedvm(['descriptor', 'from-ovf', '-'], added)
  t.strictSame(JSON.parse(back.stdout.toString('utf8')), JSON.parse(json.toString('utf8')))

  await writeFile(join(dir, 'web-2.json'), JSON.stringify({ ...JSON.parse(json.toString('utf8')), id: 'web-2' }))
  const other = await runFedvm(['descriptor', 'to-ovf', join(dir, 'web-2.json'), '--into', join(dir, 'exported.ovf')])
  t.equal(other.code, 3)
  t.match(other.stderr, /exported\.ovf: Envelope\/VirtualSystem\/@ovf:id: the package's VM is "web-1", the descriptor's id "web-2"/)
})

t.test('to-ovf says which keys of the descriptor the envelope does not carry', async (t) => {
  const dir = await tempDir(t)
  const json = JSON.parse((await runFedvm(['descriptor', 'from-ovf', FIXTURE])).stdout.toString('utf8'))
  await writeFile(join(dir, 'extra.json'), JSON.stringify({ ...json, placement: { zone: 'b' }, primarySite: { ...json.primarySite, url: 'https://a' } }))
  const result = await runFedvm(['descriptor', 'to-ovf', join(dir, 'extra.json')])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /extra\.json: not carried by the envelope: primarySite\.url, placement/)
})

t.test('refusals: exit 3 (an invalid descriptor) naming the element, exit 2 for a bad command line', async (t) => {
  const dir = await tempDir(t)
  const fixture = await readFile(FIXTURE, 'utf8')
  await writeFile(join(dir, 'bad.ovf'), fixture.replace('<rasd:VirtualQuantity>2</rasd:VirtualQuantity>', '<rasd:VirtualQuantity>two</rasd:VirtualQuantity>'))
  await writeFile(join(dir, 'bad-spec.ovf'), fixture.replace('function="median" ', ''))
  await writeFile(join(dir, 'bad.json'), '{"id":"web-1","primarySite":{"id":"a","publicKey":"x"}}')
  const [bad, badSpec, badJson, wrongForm, noSub, noFile, noOption, optionMisplaced] = await Promise.all([
    runFedvm(['descriptor', 'from-ovf', join(dir, 'bad.ovf')]),
    runFedvm(['descriptor', 'from-ovf', join(dir, 'bad-spec.ovf')]),
    runFedvm(['descriptor', 'to-ovf', join(dir, 'bad.json')]),
    runFedvm(['descriptor', 'to-ovf', FIXTURE]),
    runFedvm(['descriptor']),
    runFedvm(['descriptor', 'from-ovf']),
    runFedvm(['descriptor', 'from-ovf', FIXTURE, '--configuration', 'large']),
    runFedvm(['descriptor', 'to-ovf', join(dir, 'bad.json'), '--configuration', 'large']),
  ])
  t.equal(bad.code, 3)
  t.match(bad.stderr, /bad\.ovf: Envelope\/VirtualSystem\/VirtualHardwareSection\/Item\[1\]\/rasd:VirtualQuantity: must be a positive integer \(found "two"\)/)
  t.equal(bad.stdout.length, 0, 'nothing printed on stdout')
  t.equal(badSpec.code, 3)
  t.match(badSpec.stderr, /fedvm:Specifier\[1\]\/@function: processed format needs a function/)
  t.equal(badJson.code, 3)
  t.match(badJson.stderr, /bad\.json: primarySite\.publicKey: /)
  t.equal(badJson.stdout.length, 0, 'no envelope for a descriptor fedvm refuses')
  t.equal(wrongForm.code, 3)
  t.match(wrongForm.stderr, /is an OVF envelope already/)
  t.equal(noSub.code, 2)
  t.match(noSub.stderr, /usage: fedvm descriptor from-ovf\|to-ovf FILE \[--configuration ID\] \[--into PACKAGE\.ovf\]/)
  t.equal(noFile.code, 2)
  t.match(noFile.stderr, /from-ovf needs the descriptor FILE/)
  t.equal(noOption.code, 3)
  t.match(noOption.stderr, /web-1\.ovf: Envelope\/DeploymentOptionSection: no Configuration "large" \(there is none\)/)
  t.equal(optionMisplaced.code, 2)
  t.match(optionMisplaced.stderr, /--configuration belongs to from-ovf/)
})

t.test('the agent reads an envelope as a VM\'s descriptor and names the element of a problem', async (t) => {
  const dir = await tempDir(t)
  const fixture = await readFile(FIXTURE, 'utf8')
  await writeFile(join(dir, 'web-1.ovf'), fixture.replace('format="raw" encrypt="true"/>', 'format="processed" encrypt="true"/>'))
  await writeFile(join(dir, 'agent.json'), JSON.stringify({ stateDir: 'state', vms: [{ name: 'web-1', descriptor: 'web-1.ovf' }] }))
  const result = await runFedvm(['agent', 'run', '--config', join(dir, 'agent.json')])
  t.equal(result.code, 3)
  t.match(result.stderr, /vms\[0\]\.descriptor \(.*web-1\.ovf\): (.*; )?Envelope\/VirtualSystem\/fedvm:MonitoringSection\/fedvm:Specifier\[3\]\/@format: an encrypted KPI \(kpi:TABLE\) is delivered raw only/)
})
