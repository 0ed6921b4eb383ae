import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { readSigningKeyPair } from '../crypto/signing-keys'
import { readTlsIdentity } from '../crypto/tls-certificate'
import { signNewRequest } from '../envelope/sign-request'
import { ProtocolError, UsageError } from '../errors'
import { readDescriptorDocument } from '../ovf/descriptor-document'
import { chunkHasher } from '../proxy/chunk-hasher'
import { DaemonNoAnswerError, DaemonUnreachableError, probeDaemon } from './daemon-probe'
import { loadSiteConfig } from './load-config'
import { callSite, UnansweredError } from './signed-call'
import { startSite } from './site-daemon'
import type { SiteConfig } from './config'

/** The flags each sub-command takes (all strings); `required` are checked before the config is read. */
const SUBCOMMANDS: Record<string, { flags: string[], required: string[] }> = {
  run: { flags: ['config'], required: ['config'] },
  migrate: { flags: ['config', 'vm', 'to'], required: ['config', 'vm'] },
  place: { flags: ['config', 'vm', 'dir', 'descriptor'], required: ['config', 'vm', 'dir'] },
  evict: { flags: ['config', 'vm'], required: ['config', 'vm'] },
  cancel: { flags: ['config', 'vm'], required: ['config', 'vm'] },
  status: { flags: ['config'], required: ['config'] },
}

const PLACEHOLDER: Record<string, string> = { config: 'FILE', vm: 'ID', dir: 'DIR', descriptor: 'FILE', to: 'SITE|HOST' }

/**
 * `fedvm site run --config FILE` serves the protocol until SIGTERM/SIGINT. The other sub-commands
 * ask the running daemon of the same config (signed with the site's own key) and print its JSON answer:
 * `migrate` runs the Controller (`--to` pins the destination), `place` makes a primary placement from a directory of VM files,
 * `evict` forces a VM away to the site that delegated it here, `cancel` stops a VM's running transfer
 * (it stays where it was), `status` lists where VMs went.
 */
export async function run (argv: string[]): Promise<void> {
  const [sub, ...rest] = argv
  const spec = sub === undefined ? undefined : SUBCOMMANDS[sub]
  if (sub === undefined || spec === undefined || !Object.hasOwn(SUBCOMMANDS, sub)) {
    throw new UsageError(sub === undefined ? `a sub-command is missing (${Object.keys(SUBCOMMANDS).join(', ')})` : `unknown site sub-command ${JSON.stringify(sub)}`)
  }
  const { values } = parseArgs({ args: rest, options: Object.fromEntries(spec.flags.map((flag) => [flag, { type: 'string' as const }])) })
  for (const flag of spec.required) if (!values[flag]) throw new UsageError(`--${flag} ${PLACEHOLDER[flag]} is required`)
  const field = (flag: string): string => values[flag] as string
  const config = await loadSiteConfig(field('config'))
  switch (sub) {
    case 'run': return serve(config)
    case 'migrate': return admin(config, 'admin-migrate', { vmId: field('vm'), ...(values.to === undefined ? {} : { to: field('to') }) })
    case 'evict': return admin(config, 'admin-evict', { vmId: field('vm') })
    case 'cancel': return admin(config, 'admin-cancel', { vmId: field('vm') })
    case 'status': return admin(config, 'admin-status', {})
    case 'place': {
      const descriptor = values.descriptor ? readDescriptorDocument(await readFile(field('descriptor'), 'utf8'), field('descriptor')) : undefined
      return admin(config, 'admin-place', { vmId: field('vm'), dir: resolve(field('dir')), descriptor })
    }
  }
}

/** `fedvm vm ...` asks the daemon the same way. */
export { admin as askOwnDaemon }

async function serve (config: SiteConfig): Promise<void> {
  const log = (event: Record<string, unknown>): void => { process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), site: config.id, ...event })}\n`) }
  const running = await startSite(config, log)
  process.stdout.write(`${JSON.stringify({ event: 'listening', id: config.id, url: `https://${config.listen}`, proxies: running.site.proxies.urls, tlsFingerprint: running.site.tls.fingerprint })}\n`)
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  await running.close()
  // The hashing workers are the process's, not one site's: they end with the process's last site.
  await chunkHasher().close()
}

/**
 * Asks the site's own daemon. Its answer goes to stdout as JSON, a refusal too (then the command
 * fails); a daemon that cannot be reached is said so, not reported as a partner's failure.
 */
async function admin (config: SiteConfig, op: string, body: unknown): Promise<void> {
  const signing = await readSigningKeyPair(config.keys)
  const tls = await readTlsIdentity(config.keys)
  const url = `https://${config.listen}`
  const request = await signNewRequest({ id: config.id, secretKey: signing.secretKey }, config.id, op, body, 0)
  let answer: unknown
  try {
    answer = await callSite({ id: config.id, url, tlsFingerprint: tls.fingerprint, publicKey: signing.publicKey }, config.id, request, {
      windowMs: config.limits.timestampWindowMs, timeoutMs: config.limits.transferTimeoutMs,
    })
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err
    // Only a request that got no answer is about the daemon; its own answer "partner-unreachable" is about a partner.
    if (err instanceof UnansweredError) {
      const down = await probeDaemon(config.listen, tls.fingerprint)
      throw down !== undefined ? new DaemonUnreachableError(url, down, err) : new DaemonNoAnswerError(url, err)
    }
    process.stdout.write(`${JSON.stringify({ outcome: 'failed', code: err.code, retryable: err.retryable, detail: err.message, ...(err.downstreamCode ? { downstreamCode: err.downstreamCode } : {}) }, null, 2)}\n`)
    throw err
  }
  process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`)
}
