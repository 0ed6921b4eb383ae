import { mkdir } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { UsageError } from '../errors'
import { writeHostKeyPair, writeHostNkey } from './host-key'

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

/**
 * `fedvm host-key --host ID --out DIR`: a VM host's Ed25519 key pair (host.key secret, host.pub) for
 * the HTTP ingest, and its NATS user (host.nk, an nkey seed) for the bus. Prints, as JSON, what the
 * site config's `hosts[]` entry of that host gets (id, publicKey) and the NATS user's public key.
 */
export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' }, host: { type: 'string' } } })
  if (!values.out) throw new UsageError('--out DIR is required')
  if (!values.host || !HOST_ID.test(values.host)) throw new UsageError('--host ID is required: the host\'s id in the site config (letters, digits, ._-)')
  await mkdir(values.out, { recursive: true, mode: 0o700 })
  const publicKey = await writeHostKeyPair(values.out)
  const natsUser = await writeHostNkey(values.out)
  process.stderr.write(`wrote host.key, host.nk (secret) and host.pub in ${values.out}\n`)
  process.stdout.write(`${JSON.stringify({ id: values.host, publicKey, natsUser }, null, 2)}\n`)
}
