import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULTS, listenAddress, loadConfig, parseConfig } from '../../../agent/config/agent-config'
import { AgentError } from '../../../agent/errors'

// "Bad config: a message naming the field". Every bad field is refused with its path
// as the user writes it (`vms[0].feed: …`), and the error carries the stable code CONFIG_INVALID.

const FILE = '/etc/fedvm/agent.json'
const VM = { name: 'web-1', descriptor: 'web-1.json', feed: 'unix:/run/fedvm/web-1.sock' }
const CONSUMER = { type: 'http', url: 'http://127.0.0.1:8080/ingest' }

function refusal (json: unknown): AgentError {
  try {
    parseConfig(json, FILE)
  } catch (err) {
    if (err instanceof AgentError) return err
    throw err
  }
  throw new Error(`accepted: ${JSON.stringify(json)}`)
}

const BAD: Array<[what: string, json: unknown, message: RegExp]> = [
  ['not an object', [], /^\/etc\/fedvm\/agent\.json: \(top level\): .*expected object/],
  ['null', null, /\(top level\): .*expected object/],
  ['unknown top-level key (a typo)', { listne: '127.0.0.1:1' }, /(^|: )listne: is not a known setting/],
  ['listen without a port', { listen: '127.0.0.1' }, /^[^;]*: listen: must be HOST:PORT/],
  ['listen not a string', { listen: 9464 }, /listen: .*expected string/],
  ['listen port out of range', { listen: '127.0.0.1:99999' }, /listen: .*65535/],
  ['stateDir empty', { stateDir: '' }, /stateDir: /],
  ['stateDir not a string', { stateDir: 5 }, /stateDir: .*expected string/],
  ['vms not an array', { vms: {} }, /vms: .*expected array/],
  ['vms[0].name missing', { vms: [{ descriptor: 'd.json' }] }, /vms\[0\]\.name: /],
  ['vms[0].name with a slash', { vms: [{ ...VM, name: 'a/b' }] }, /vms\[0\]\.name: must not contain \//],
  ['vms[0].descriptor missing', { vms: [{ name: 'a' }] }, /vms\[0\]\.descriptor: /],
  ['vms[0].descriptor empty', { vms: [{ name: 'a', descriptor: '' }] }, /vms\[0\]\.descriptor: /],
  ['vms[0].feed not unix:', { vms: [{ ...VM, feed: 'tcp:127.0.0.1:9' }] }, /vms\[0\]\.feed: must be unix:PATH/],
  ['vms[0].feed unix: without a path', { vms: [{ ...VM, feed: 'unix:' }] }, /vms\[0\]\.feed: must be unix:PATH/],
  ['vms[1].domain empty', { vms: [VM, { ...VM, name: 'web-2', domain: '' }] }, /vms\[1\]\.domain: /],
  ['vms[1].name duplicate', { vms: [VM, { ...VM }] }, /vms\[1\]\.name: duplicate VM name "web-1"/],
  ['vms[0] unknown key', { vms: [{ ...VM, descriptr: 'x' }] }, /vms\[0\]\.descriptr: is not a known setting/],
  ['consumers[0].type', { consumers: [{ ...CONSUMER, type: 'kafka' }] }, /consumers\[0\]\.type: /],
  ['consumers[0].url not a URL', { consumers: [{ ...CONSUMER, url: 'not a url' }] }, /consumers\[0\]\.url: /],
  ['consumers[1].url not http', { consumers: [CONSUMER, { ...CONSUMER, url: 'ftp://127.0.0.1/x' }] }, /consumers\[1\]\.url: must be an http\(s\) URL/],
  ['consumers[0] unknown key', { consumers: [{ ...CONSUMER, retries: 3 }] }, /consumers\[0\]\.retries: is not a known setting/],
  ['discover.vmDir missing', { discover: { intervalMs: 1000 } }, /discover\.vmDir: /],
  ['discover.vmDir empty', { discover: { vmDir: '' } }, /discover\.vmDir: /],
  ['discover.intervalMs too short', { discover: { vmDir: 'vms', intervalMs: 10 } }, /discover\.intervalMs: /],
  ['discover unknown key', { discover: { vmDir: 'vms', dir: 'x' } }, /discover\.dir: is not a known setting/],
  ['deadLetters.unauthenticatedAfterMs too short', { deadLetters: { unauthenticatedAfterMs: 10 } }, /deadLetters\.unauthenticatedAfterMs: .*1000/],
  ['deadLetters.unauthenticatedAfterMs not a whole number', { deadLetters: { unauthenticatedAfterMs: '48h' } }, /deadLetters\.unauthenticatedAfterMs: .*expected number/],
]

for (const [what, json, message] of BAD) {
  t.test(`refused: ${what}`, async (t) => {
    const err = refusal(json)
    t.equal(err.code, 'CONFIG_INVALID')
    t.match(err.message, message)
    t.ok(err.message.startsWith(`${FILE}: `), 'names the file')
  })
}

t.test('every problem of one config is named, not only the first', async (t) => {
  const err = refusal({ listen: 'x', vms: [{ ...VM, feed: 'tcp:1' }], consumers: [{ ...CONSUMER, url: 'ftp://h/' }] })
  t.match(err.message, /listen: /)
  t.match(err.message, /vms\[0\]\.feed: /)
  t.match(err.message, /consumers\[0\]\.url: /)
})

t.test('defaults: listen, stateDir, no VMs, no consumers', async (t) => {
  const config = parseConfig({}, FILE)
  t.equal(config.listen, DEFAULTS.listen)
  t.equal(config.listen, '127.0.0.1:9464')
  t.equal(config.stateDir, DEFAULTS.stateDir)
  t.strictSame(config.vms, [])
  t.strictSame(config.consumers, [])
  t.equal(config.deadLetters.unauthenticatedAfterMs, 48 * 3600_000, 'a delivery the site refuses for the host\'s signature is retried 48 h')
  t.equal(parseConfig({ deadLetters: { maxRows: 5 } }, FILE).deadLetters.unauthenticatedAfterMs, 48 * 3600_000, 'also when deadLetters sets only another bound')
})

t.test('relative paths are taken from the config file\'s folder; absolute ones are kept', async (t) => {
  const config = parseConfig({
    stateDir: 'state',
    vms: [
      { name: 'a', descriptor: 'descriptors/a.json', feed: 'unix:run/a.sock' },
      { name: 'b', descriptor: '/srv/b.json', feed: 'unix:/run/fedvm/b.sock' },
      { name: 'c', descriptor: '../c.json' },
    ],
  }, 'conf/agent.json')
  const base = join(process.cwd(), 'conf')
  t.equal(config.stateDir, join(base, 'state'))
  t.equal(config.vms[0].descriptor, join(base, 'descriptors', 'a.json'))
  t.equal(config.vms[0].feed, `unix:${join(base, 'run', 'a.sock')}`)
  t.equal(config.vms[1].descriptor, '/srv/b.json')
  t.equal(config.vms[1].feed, 'unix:/run/fedvm/b.sock')
  t.equal(config.vms[2].descriptor, join(process.cwd(), 'c.json'))
  t.equal(config.vms[2].feed, undefined, 'a VM without a feed has none')
})

t.test('discover: the VM directory from the config file\'s folder, a look every 2 s by default', async (t) => {
  t.strictSame(parseConfig({ discover: { vmDir: 'vms' } }, 'conf/agent.json').discover, { vmDir: join(process.cwd(), 'conf', 'vms'), intervalMs: 2000 })
  t.strictSame(parseConfig({ discover: { vmDir: '/var/lib/fedvm/vms', intervalMs: 500 } }, FILE).discover, { vmDir: '/var/lib/fedvm/vms', intervalMs: 500 })
  t.equal(parseConfig({}, FILE).discover, undefined, 'off unless configured')
})

t.test('loadConfig: a missing file or bad JSON names the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-agent-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const missing = join(dir, 'missing.json')
  await t.rejects(loadConfig(missing), { code: 'CONFIG_INVALID', message: new RegExp(`^${missing}: .*ENOENT`) })
  const broken = join(dir, 'broken.json')
  await writeFile(broken, '{ "listen": ')
  await t.rejects(loadConfig(broken), { code: 'CONFIG_INVALID', message: new RegExp(`^${broken}: .*JSON`) })
  const good = join(dir, 'good.json')
  await writeFile(good, JSON.stringify({ stateDir: 's', vms: [{ name: 'a', descriptor: 'a.json' }] }))
  const config = await loadConfig(good)
  t.equal(config.stateDir, join(dir, 's'))
  t.equal(config.vms[0].descriptor, join(dir, 'a.json'))
})

t.test('listenAddress: host and port, IPv6 in brackets', async (t) => {
  t.strictSame(listenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 })
  t.strictSame(listenAddress('[::1]:0'), { host: '::1', port: 0 })
  t.strictSame(listenAddress('localhost:80'), { host: 'localhost', port: 80 })
  t.throws(() => listenAddress('9464'), { code: 'CONFIG_INVALID', message: /listen: / })
})
