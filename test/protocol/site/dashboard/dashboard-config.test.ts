import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDashboard } from '../../../../protocol/site/dashboard/open-dashboard'
import { ConfigError } from '../../../../protocol/errors'
import { parseSiteConfig } from '../../../../protocol/site/config'

const BASE = { id: 'site-a', listen: '127.0.0.1:7000', keys: 'keys', proxies: [{ listen: '127.0.0.1:7001' }], stateDir: 'state' }

/** The site config's dashboard section as parsed, or the field and message it is refused with. */
function dashboard (value: unknown): unknown {
  try {
    return parseSiteConfig({ ...BASE, ...(value === undefined ? {} : { dashboard: value }) }, '/etc/fedvm/site.json').dashboard
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.message
  }
}

t.test('the dashboard section: off by default, loopback freely, elsewhere only behind a web config', async (t) => {
  t.same(dashboard(undefined), { listen: 'off', sealed: false }, 'no dashboard unless asked for')
  t.same(dashboard({ listen: 'off' }), { listen: 'off', sealed: false })
  t.same(dashboard({ listen: '127.0.0.1:9480' }), { listen: '127.0.0.1:9480', sealed: false })
  t.same(dashboard({ listen: '[::1]:9480', sealed: true }), { listen: '[::1]:9480', sealed: true })
  t.same(dashboard({ listen: '0.0.0.0:9480', webConfig: 'web.yml' }), { listen: '0.0.0.0:9480', webConfig: '/etc/fedvm/web.yml', sealed: false }, 'webConfig is taken from the config file\'s folder')
  t.match(dashboard({ listen: '10.1.2.3:9480' }), /^dashboard\.webConfig: is needed when listen \(10\.1\.2\.3:9480\) is not a loopback address/)
  t.match(dashboard({ listen: 'everywhere' }), /^dashboard\.listen: "everywhere" is neither "off" nor HOST:PORT/)
  t.match(dashboard({ listen: '127.0.0.1:9480', sealed: 'yes' }), /^dashboard\.sealed: must be true or false/)
  t.match(dashboard({ listen: '127.0.0.1:9480', port: 1 }), /^dashboard\.port: /)
  t.match(dashboard('on'), /^dashboard: must be an object/)
})

t.test('off loopback, the web config must ask for credentials: the site stops at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedvm-dash-web-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'web.yml'), '# TLS only would be here; no basic_auth_users\n')
  const deps = {
    config: { listen: '10.1.2.3:9480', webConfig: join(dir, 'web.yml'), sealed: false }, stateDir: dir, keysDir: dir, rules: [], log: () => {},
    status: () => ({ id: 'site-a', locations: [], migrations: [], transfers: [], arrivals: [], inDoubt: [] }), location: () => undefined,
  }
  await t.rejects(openDashboard(deps), { name: 'ConfigError', message: /^dashboard\.webConfig: .*web\.yml lists no basic_auth_users: a dashboard off loopback \(10\.1\.2\.3:9480\) needs them/ })
})
