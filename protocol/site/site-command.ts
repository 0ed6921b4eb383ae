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
import type { SiteConfig } from './config'
import { showProgressWhile } from './progress-display'
import { SiteStatusSchema, statusText } from './site-status'

/** The flags each sub-command takes (strings; `switches` take no value); `required` are checked before the config is read. */
const SUBCOMMANDS: Record<string, { flags: string[], required: string[], switches?: string[] }> = {
  run: { flags: ['config'], required: ['config'] },
  migrate: { flags: ['config', 'vm', 'to'], required: ['config', 'vm'], switches: ['json'] },
  place: { flags: ['config', 'vm', 'dir', 'descriptor'], required: ['config', 'vm', 'dir'] },
  evict: { flags: ['config', 'vm'], required: ['config', 'vm'] },
  cancel: { flags: ['config', 'vm'], required: ['config', 'vm'] },
  status: { flags: ['config'], required: ['config'], switches: ['json'] },
}

const PLACEHOLDER: Record<string, string> = { config: 'FILE', vm: 'ID', dir: 'DIR', descriptor: 'FILE', to: 'SITE|HOST' }

/**
 * `fedvm site run --config FILE` serves the protocol until SIGTERM/SIGINT. The other sub-commands
 * ask the running daemon of the same config (signed with the site's own key) and print its JSON answer:
 * `migrate` runs the Controller (`--to` pins the destination; on a terminal a progress line is drawn
 * while it runs, unless `--json`), `place` makes a primary placement from a directory of VM files,
 * `evict` forces a VM away to the site that delegated it here, `cancel` stops a VM's running transfer
 * (it stays where it was), `status` lists where VMs went and the migrations running (a line each on a
 * terminal, unless `--json`).
 */
export async function run (argv: string[]): Promise<void> {
  const [sub, ...rest] = argv
  // Reads and writes the site's own monitoring.db, daemon running or not: its flags are its own.
  if (sub === 'dead-letters') return (await import('./relay-dead-letters-command.js')).run(rest)
  const spec = sub === undefined ? undefined : SUBCOMMANDS[sub]
  if (sub === undefined || spec === undefined || !Object.hasOwn(SUBCOMMANDS, sub)) {
    throw new UsageError(sub === undefined ? `a sub-command is missing (${[...Object.keys(SUBCOMMANDS), 'dead-letters'].join(', ')})` : `unknown site sub-command ${JSON.stringify(sub)}`)
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = Object.fromEntries([
    ...spec.flags.map((flag) => [flag, { type: 'string' as const }]),
    ...(spec.switches ?? []).map((flag) => [flag, { type: 'boolean' as const }]),
  ])
  const values: Record<string, string | boolean | undefined> = parseArgs({ args: rest, options }).values
  for (const flag of spec.required) if (!values[flag]) throw new UsageError(`--${flag} ${PLACEHOLDER[flag]} is required`)
  const field = (flag: string): string => values[flag] as string
  const config = await loadSiteConfig(field('config'))
  switch (sub) {
    case 'run': return serve(config)
    case 'migrate': {
      const body = { vmId: field('vm'), ...(values.to === undefined ? {} : { to: field('to') }) }
      // Piped, or asked for JSON: the outcome alone, as a script reads it.
      if (values.json === true || process.stdout.isTTY !== true) return admin(config, 'admin-migrate', body)
      return admin(config, 'admin-migrate', body, (running, daemon) => showProgressWhile(running, field('vm'), () => daemon.ask('admin-status', {}, STATUS_TIMEOUT_MS), process.stdout))
    }
    case 'evict': return admin(config, 'admin-evict', { vmId: field('vm') })
    case 'cancel': return admin(config, 'admin-cancel', { vmId: field('vm') })
    case 'status': return admin(config, 'admin-status', {}, undefined, values.json === true || process.stdout.isTTY !== true ? undefined : showStatus)
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
  // Loaded here, not at the top: the daemon's modules cost the other sub-commands (migrate, status, ...) a few hundred ms to load.
  const { startSite } = await import('./site-daemon.js')
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

/** The site's own daemon, asked with the site's own key (read once, however often it is asked). */
export interface OwnDaemon {
  url: string
  ask: (op: string, body: unknown, timeoutMs?: number) => Promise<unknown>
}

/** A status asked for the progress line must not hold the line up long. */
const STATUS_TIMEOUT_MS = 5000

async function ownDaemon (config: SiteConfig): Promise<OwnDaemon> {
  const signing = await readSigningKeyPair(config.keys)
  const tls = await readTlsIdentity(config.keys)
  const url = `https://${config.listen}`
  return {
    url,
    ask: async (op, body, timeoutMs = config.limits.transferTimeoutMs) => {
      const request = await signNewRequest({ id: config.id, secretKey: signing.secretKey }, config.id, op, body, 0)
      try {
        return await callSite({ id: config.id, url, tlsFingerprint: tls.fingerprint, publicKey: signing.publicKey }, config.id, request, {
          windowMs: config.limits.timestampWindowMs, timeoutMs,
        })
      } catch (err) {
        // Only a request that got no answer is about the daemon; its own answer "partner-unreachable" is about a partner.
        if (err instanceof UnansweredError) {
          const down = await probeDaemon(config.listen, tls.fingerprint)
          throw down !== undefined ? new DaemonUnreachableError(url, down, err) : new DaemonNoAnswerError(url, err)
        }
        throw err
      }
    },
  }
}

/**
 * Asks the site's own daemon. Its answer goes to stdout (as JSON, or as `render` writes it), a refusal
 * as JSON too (then the command fails); a daemon that cannot be reached is said so, not reported as a
 * partner's failure. `whileWaiting` runs until the answer is in (the progress line of a migration).
 */
async function admin (config: SiteConfig, op: string, body: unknown, whileWaiting?: (running: Promise<unknown>, daemon: OwnDaemon) => Promise<void>, render?: (answer: unknown) => string): Promise<void> {
  const daemon = await ownDaemon(config)
  const running = daemon.ask(op, body)
  if (whileWaiting !== undefined) await whileWaiting(running, daemon)
  let answer: unknown
  try {
    answer = await running
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err
    process.stdout.write(`${JSON.stringify({ outcome: 'failed', code: err.code, retryable: err.retryable, detail: err.message, ...(err.downstreamCode ? { downstreamCode: err.downstreamCode } : {}) }, null, 2)}\n`)
    throw err
  }
  process.stdout.write(render === undefined ? `${JSON.stringify(answer, null, 2)}\n` : render(answer))
}

/** `fedvm site status` on a terminal: a line each; an answer that is not a status (an older daemon) as JSON. */
function showStatus (answer: unknown): string {
  const status = SiteStatusSchema.safeParse(answer)
  return status.success ? statusText(status.data) : `${JSON.stringify(answer, null, 2)}\n`
}
