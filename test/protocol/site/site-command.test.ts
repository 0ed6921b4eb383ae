import t from 'tap'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { runFedvm } from '../support/fedvm-process'
import { parseSiteConfig } from '../../../protocol/site/config'

t.test('keygen writes the sealing, signing and TLS keys and prints what partners need', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-keygen-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'keys')
  const result = await runFedvm(['keygen', '--site', 'site-q', '--out', out])
  t.equal(result.code, 0, result.stderr)
  const printed = JSON.parse(result.stdout)
  t.equal(printed.id, 'site-q')
  t.equal(printed.publicKey, (await readFile(join(out, 'sign.pub'), 'utf8')).trim())
  t.equal(printed.sealPublicKey, (await readFile(join(out, 'seal.pub'), 'utf8')).trim())
  const cert = new X509Certificate(await readFile(join(out, 'tls.crt')))
  t.equal(printed.tlsFingerprint, cert.fingerprint256)
  t.match(cert.subject, /CN=site-q/)
  t.notOk(result.stdout.includes((await readFile(join(out, 'sign.key'), 'utf8')).trim()), 'no secret printed')
  const again = await runFedvm(['keygen', '--site', 'site-q', '--out', out])
  t.not(again.code, 0, 'existing keys are never overwritten')
})

t.test('site run refuses a bad config, naming the field', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const good = {
    id: 'site-a', listen: '127.0.0.1:7001', keys: 'keys',
    partners: [{ id: 'site-b', url: 'https://127.0.0.1:7002', publicKey: Buffer.alloc(32, 1).toString('base64'), tlsFingerprint: 'AB'.repeat(32) }],
    policy: { delegate: true, expose: 'all', acceptFrom: ['site-b'] },
    hosts: [{ id: 'h1', vmDir: 'vms', maxVms: 10 }],
    proxies: [{ listen: '127.0.0.1:7101' }],
    stateDir: 'state',
  }
  const cases: Array<[string, (c: any) => void, RegExp]> = [
    ['unknown setting', (c) => { c.colour = 'blue' }, /colour/],
    ['bad id', (c) => { c.id = 'Site A' }, /\bid\b/],
    ['bad listen', (c) => { c.listen = 'localhost' }, /listen/],
    ['partner url', (c) => { c.partners[0].url = 'http://127.0.0.1:7002' }, /partners\[0\]\.url/],
    ['partner key', (c) => { c.partners[0].publicKey = 'abc' }, /partners\[0\]\.publicKey/],
    ['partner fingerprint', (c) => { c.partners[0].tlsFingerprint = 'zz' }, /partners\[0\]\.tlsFingerprint/],
    ['expose', (c) => { c.policy.expose = 'some' }, /policy\.expose/],
    ['acceptFrom names a stranger', (c) => { c.policy.acceptFrom = ['site-z'] }, /policy\.acceptFrom\[0\]/],
    ['maxVms', (c) => { c.hosts[0].maxVms = -1 }, /hosts\[0\]\.maxVms/],
    ['duplicate host', (c) => { c.hosts.push({ ...c.hosts[0] }) }, /hosts\[1\]\.id/],
    ['no proxies', (c) => { c.proxies = [] }, /proxies/],
    ['proxy url', (c) => { c.proxies[0].url = 'ftp://x' }, /proxies\[0\]\.url/],
    ['limits', (c) => { c.limits = { hopBudget: 'many' } }, /limits\.hopBudget/],
  ]
  t.doesNotThrow(() => parseSiteConfig(good, join(dir, 'site.json')), 'the example config is accepted')
  for (const [what, edit, field] of cases) {
    const config = JSON.parse(JSON.stringify(good))
    edit(config)
    t.throws(() => parseSiteConfig(config, join(dir, 'site.json')), { name: 'ConfigError', message: field }, `${what}: refused, naming the field`)
  }
  const bad = JSON.parse(JSON.stringify(good))
  bad.hosts[0].maxVms = 'ten'
  await writeFile(join(dir, 'site.json'), JSON.stringify(bad))
  const result = await runFedvm(['site', 'run', '--config', join(dir, 'site.json')])
  t.not(result.code, 0, 'fedvm site run exits non-zero')
  t.match(result.stderr, /hosts\[0\]\.maxVms/, 'and names the field')
  await writeFile(join(dir, 'broken.json'), '{ "id": ')
  const broken = await runFedvm(['site', 'run', '--config', join(dir, 'broken.json')])
  t.not(broken.code, 0)
  t.match(broken.stderr, /not valid JSON/)
})
