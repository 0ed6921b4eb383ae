import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseConfig } from '../../agent/config/agent-config'
import { parseSiteConfig } from '../../protocol/site/config'
import { REPO_ROOT } from '../support/dist-paths'

// The configs the package installs under /etc/fedvm are valid for the programs that read them, and
// point at the state folders the package creates and the units give the services.

const ETC = join(REPO_ROOT, 'packaging', 'deb', 'etc', 'fedvm')

t.test('/etc/fedvm/agent.json is a valid agent config: /metrics on loopback, state in /var/lib/fedvm/agent', async (t) => {
  const file = join(ETC, 'agent.json')
  const config = parseConfig(JSON.parse(await readFile(file, 'utf8')), '/etc/fedvm/agent.json')
  t.equal(config.listen, '127.0.0.1:9464', 'listens on loopback only until the operator opens it')
  t.equal(config.stateDir, '/var/lib/fedvm/agent', 'the agent unit\'s StateDirectory')
  t.same([config.vms, config.consumers], [[], []], 'no VMs and no consumers yet')
})

t.test('/etc/fedvm/site.example.json is a valid site config with everything under /var/lib/fedvm/site', async (t) => {
  const config = parseSiteConfig(JSON.parse(await readFile(join(ETC, 'site.example.json'), 'utf8')), '/etc/fedvm/site.json')
  t.equal(config.keys, '/var/lib/fedvm/site/keys', 'keys where `sudo -u fedvm-site fedvm keygen` puts them')
  t.ok([config.stateDir, ...config.hosts.map((h) => h.vmDir)].every((dir) => dir.startsWith('/var/lib/fedvm/site/')), 'state and VM folders in the site unit\'s StateDirectory')
  t.ok(config.proxies.every((p) => !/^https:\/\/(0\.0\.0\.0|\[::\]):/.test(p.url)), 'proxies listening on a wildcard say where partners reach them (url)')
  for (const listen of [config.listen, ...config.proxies.map((p) => p.listen)]) {
    t.ok(Number(listen.split(':').pop()) > 1024, `${listen}: a port the unprivileged fedvm-site may bind`)
  }
})
