import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '../cli/usage-error'
import { readSigningKeyPair } from '../crypto/signing-keys'
import { readTlsIdentity } from '../crypto/tls-certificate'
import { signNewRequest } from '../envelope/sign-request'
import { ConfigError, ProtocolError } from '../errors'
import { loadSiteConfig } from './load-config'
import { callSite } from './partner-client'
import { startSite } from './site-daemon'
import type { SiteConfig } from './config'
import { EXIT } from '../cli/exit-codes'

const USAGE = 'fedvm site run|migrate|place|evict|cancel|status --config FILE [--vm ID] [--dir DIR] [--descriptor FILE]'

/**
 * `fedvm site run --config FILE` serves the protocol until SIGTERM/SIGINT. The other sub-commands
 * ask the running daemon of the same config (signed with the site's own key) and print its JSON answer:
 * `migrate` runs the Controller, `place` makes a primary placement from a directory of VM files,
 * `evict` forces a VM away to the site that delegated it here, `cancel` stops a VM's running transfer
 * (it stays where it was), `status` lists where VMs went.
 */
export async function run (argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, vm: { type: 'string' }, dir: { type: 'string' }, descriptor: { type: 'string' } } })
  if (!values.config) throw new UsageError(`--config FILE is required\nusage: ${USAGE}`)
  let config: SiteConfig
  try {
    config = await loadSiteConfig(values.config)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`fedvm site: bad config ${values.config}: ${err.message}\n`)
      return EXIT.CONFIG
    }
    throw err
  }
  switch (sub) {
    case 'run': return serve(config)
    case 'migrate': return admin(config, 'admin-migrate', { vmId: required(values.vm, '--vm ID') })
    case 'evict': return admin(config, 'admin-evict', { vmId: required(values.vm, '--vm ID') })
    case 'cancel': return admin(config, 'admin-cancel', { vmId: required(values.vm, '--vm ID') })
    case 'status': return admin(config, 'admin-status', {})
    case 'place': {
      const descriptor = values.descriptor ? JSON.parse(await readFile(values.descriptor, 'utf8')) : undefined
      return admin(config, 'admin-place', { vmId: required(values.vm, '--vm ID'), dir: resolve(required(values.dir, '--dir DIR')), descriptor })
    }
    default: throw new UsageError(`unknown sub-command ${JSON.stringify(sub ?? '')}\nusage: ${USAGE}`)
  }
}

function required (value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${what} is required`)
  return value
}

async function serve (config: SiteConfig): Promise<number> {
  const log = (event: Record<string, unknown>): void => { process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), site: config.id, ...event })}\n`) }
  const running = await startSite(config, log)
  process.stdout.write(`${JSON.stringify({ event: 'listening', id: config.id, url: `https://${config.listen}`, proxies: running.site.proxies.urls, tlsFingerprint: running.site.tls.fingerprint })}\n`)
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  await running.close()
  return EXIT.OK
}

async function admin (config: SiteConfig, op: string, body: unknown): Promise<number> {
  const signing = await readSigningKeyPair(config.keys)
  const tls = await readTlsIdentity(config.keys)
  const request = await signNewRequest({ id: config.id, secretKey: signing.secretKey }, config.id, op, body, 0)
  try {
    const answer = await callSite({ id: config.id, url: `https://${config.listen}`, tlsFingerprint: tls.fingerprint, publicKey: signing.publicKey }, config.id, request, {
      windowMs: config.limits.timestampWindowMs, timeoutMs: config.limits.transferTimeoutMs,
    })
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`)
    return EXIT.OK
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err
    process.stdout.write(`${JSON.stringify({ outcome: 'failed', code: err.code, retryable: err.retryable, detail: err.message, ...(err.downstreamCode ? { downstreamCode: err.downstreamCode } : {}) }, null, 2)}\n`)
    return EXIT.FAILURE
  }
}
