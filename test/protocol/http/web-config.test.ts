import t from 'tap'
import bcrypt from 'bcryptjs'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadWebConfig } from '../../../protocol/http/web-config'
import { createWebServer } from '../../../protocol/http/web-server'

// A /metrics-style endpoint behind a web.config.yml in exporter-toolkit's form: a real HTTPS
// listener with a certificate from openssl and basic auth against bcrypt hashes.

async function folder (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-web-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function get (port: number, auth: string | undefined, tls: boolean): Promise<{ status: number, body: string, challenge?: string }> {
  const send = tls ? request : httpRequest
  return new Promise((resolve, reject) => {
    const req = send({ host: '127.0.0.1', port, path: '/metrics', rejectUnauthorized: false, headers: auth === undefined ? {} : { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, challenge: res.headers['www-authenticate'] }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('TLS and basic auth from web.config.yml', async (t) => {
  const dir = await folder(t)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.crt'), '-subj', '/CN=metrics', '-days', '1'], { stdio: 'ignore' })
  const hash = bcrypt.hashSync('s3cret', 4)
  await writeFile(join(dir, 'web.config.yml'), `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: ${hash}\n`)
  const config = await loadWebConfig(join(dir, 'web.config.yml'))
  const server = createWebServer(config, (_req, res) => { res.end('fedvm_up 1\n') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  const port = (server.address() as AddressInfo).port
  t.match(await get(port, undefined, true), { status: 401, challenge: /^Basic / }, 'no credentials')
  t.match(await get(port, 'prometheus:wrong', true), { status: 401 }, 'a wrong password')
  t.match(await get(port, 'nobody:s3cret', true), { status: 401 }, 'an unknown user')
  t.match(await get(port, 'prometheus:s3cret', true), { status: 200, body: 'fedvm_up 1\n' })
  t.match(await get(port, 'prometheus:s3cret', true), { status: 200 }, 'again (remembered)')
  await t.rejects(get(port, 'prometheus:s3cret', false), 'plain HTTP is not served')
})

t.test('a web config that would leave the endpoint open or broken is refused by name', async (t) => {
  const dir = await folder(t)
  const write = async (text: string) => { await writeFile(join(dir, 'web.yml'), text); return join(dir, 'web.yml') }
  await t.rejects(loadWebConfig(await write('basic_auth_user:\n  a: b\n')), { code: 'bad-config', message: /web\.yml: basic_auth_user: is not a known setting/ })
  await t.rejects(loadWebConfig(await write('basic_auth_users:\n  prometheus: plaintext\n')), { message: /basic_auth_users\.prometheus: must be a bcrypt hash/ })
  await t.rejects(loadWebConfig(await write('tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n')), { message: /tls_server_config\.cert_file: cannot read/ })
  await t.rejects(loadWebConfig(await write('a: [\n')), { code: 'bad-config' }, 'not YAML')
  t.same(await loadWebConfig(await write('')), {}, 'an empty file: plain HTTP, no auth, as exporter-toolkit')
})
