import t from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EXIT } from '../../packaging/bin/exit-codes'
import { readTlsIdentity, writeTlsIdentity } from '../../protocol/crypto/tls-certificate'
import { probeDaemon } from '../../protocol/site/daemon-probe'
import { freePort } from '../support/free-port'
import { FedvmDaemon, runFedvm } from '../protocol/support/fedvm-process'

// `fedvm site status` (and every sub-command that asks the site's own daemon) says when that daemon
// is down, instead of reporting a partner as unreachable.

t.test('probeDaemon: undefined only when the site\'s own certificate answers; else why not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-probe-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await Promise.all([writeTlsIdentity(dir, 'site-a'), mkdir(join(dir, 'other')).then(() => writeTlsIdentity(join(dir, 'other'), 'site-a'))])
  const [own, other] = await Promise.all([readTlsIdentity(dir), readTlsIdentity(join(dir, 'other'))])
  const server = createTlsServer({ key: own.key, cert: own.cert }, (socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const listen = `127.0.0.1:${(server.address() as AddressInfo).port}`
  t.equal(await probeDaemon(listen, own.fingerprint), undefined, 'the site\'s certificate: the daemon is there')
  t.match(await probeDaemon(listen, other.fingerprint), /a server there presents a certificate other than the site's tls\.crt/, 'another certificate: not the daemon')
  await new Promise((resolve) => server.close(resolve))
  t.equal(await probeDaemon(listen, own.fingerprint), 'ECONNREFUSED', 'closed: refused')

  const plain = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => plain.close(resolve)))
  t.type(await probeDaemon(`127.0.0.1:${(plain.address() as AddressInfo).port}`, own.fingerprint), 'string', 'a program that speaks no TLS: not the daemon')
})

t.test('site status with the daemon down says so; with it up, answers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-site-status-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keygen = await runFedvm(['keygen', '--site', 'site-a', '--out', join(dir, 'keys')])
  t.equal(keygen.code, EXIT.OK, keygen.stderr)
  const [port, proxyPort] = [await freePort(), await freePort()]
  const config = join(dir, 'site.json')
  await writeFile(config, JSON.stringify({
    id: 'site-a', listen: `127.0.0.1:${port}`, keys: 'keys', partners: [],
    policy: { delegate: false, expose: 'all', acceptFrom: [] },
    hosts: [{ id: 'h1', vmDir: 'vms', maxVms: 1 }], proxies: [{ listen: `127.0.0.1:${proxyPort}` }], stateDir: 'state',
  }))

  const [status, migrate] = await Promise.all([runFedvm(['site', 'status', '--config', config]), runFedvm(['migrate', '--config', config, '--vm', 'web-1'])])
  for (const [what, result] of [['site status', status], ['migrate', migrate]] as const) {
    t.equal(result.code, EXIT.FAILURE, `${what}: exit ${EXIT.FAILURE}`)
    t.match(result.stderr, `the site daemon at https://127.0.0.1:${port} is not running or not reachable (ECONNREFUSED)`, `${what}: says the daemon is down`)
    t.notMatch(result.stderr + result.stdout, /partner-unreachable|partner/, `${what}: no partner is blamed`)
    t.equal(result.stdout, '', `${what}: no answer on stdout`)
  }

  const daemon = new FedvmDaemon(['site', 'run', '--config', config])
  t.teardown(() => daemon.stop())
  await daemon.started()
  const up = await runFedvm(['site', 'status', '--config', config])
  t.equal(up.code, EXIT.OK, up.stderr)
  t.match(up.json, { id: 'site-a', locations: [] }, 'the daemon\'s answer')
  const unknown = await runFedvm(['migrate', '--config', config, '--vm', 'web-1'])
  t.equal(unknown.code, EXIT.FAILURE, 'a refusal from the daemon fails the command')
  t.match(unknown.json, { outcome: 'failed', code: 'unknown-vm' }, 'and is printed as the daemon gave it')
  t.notMatch(unknown.stderr, /not running/, 'a running daemon is not reported down')
})

t.test('a daemon that is up but gives no answer is said to be so, and no partner is blamed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-site-silent-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keygen = await runFedvm(['keygen', '--site', 'site-a', '--out', join(dir, 'keys')])
  t.equal(keygen.code, EXIT.OK, keygen.stderr)
  const own = await readTlsIdentity(join(dir, 'keys'))
  // Stands in for a daemon stuck after the handshake: the site's own certificate, then silence.
  const held: Array<{ destroy: () => void }> = []
  const silent = createTlsServer({ key: own.key, cert: own.cert }, (socket) => { held.push(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { for (const s of held) s.destroy(); silent.close(resolve) }))
  const port = (silent.address() as AddressInfo).port
  const config = join(dir, 'site.json')
  await writeFile(config, JSON.stringify({
    id: 'site-a', listen: `127.0.0.1:${port}`, keys: 'keys', partners: [],
    policy: { delegate: false, expose: 'all', acceptFrom: [] },
    hosts: [{ id: 'h1', vmDir: 'vms', maxVms: 1 }], proxies: [{ listen: `127.0.0.1:${await freePort()}` }], stateDir: 'state',
    limits: { transferTimeoutMs: 1000 },
  }))
  const status = await runFedvm(['site', 'status', '--config', config])
  t.equal(status.code, EXIT.FAILURE, 'exit 1')
  t.match(status.stderr, `the site daemon at https://127.0.0.1:${port} is running but gave no answer (no answer within 1000 ms)`, 'says the daemon is up and silent')
  t.notMatch(status.stderr + status.stdout, /partner/, 'no partner is blamed')
  t.equal(status.stdout, '', 'no answer on stdout')
})
