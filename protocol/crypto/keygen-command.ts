import { mkdir } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '../errors'
import { writeSealKeyPair } from './key-files'
import { writeSigningKeyPair } from './signing-keys'
import { writeTlsIdentity } from './tls-certificate'
import { isSiteId } from '../site-id'


/**
 * `fedvm keygen --site ID --out DIR`: a site's keys. seal.key/seal.pub (what VM owners seal KPIs for),
 * sign.key/sign.pub (Ed25519 identity) and tls.key/tls.crt (self-signed). Prints, as JSON, what partners
 * put in their partner list: the signing public key and the certificate fingerprint.
 */
export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' }, site: { type: 'string' } } })
  if (!values.out) throw new UsageError('--out DIR is required')
  const site = values.site ?? basename(resolve(values.out))
  if (!isSiteId(site)) throw new UsageError(`--site ${JSON.stringify(site)}: use lower-case letters, digits, '.' and '-'`)
  await mkdir(values.out, { recursive: true, mode: 0o700 })
  const sealPublicKey = await writeSealKeyPair(values.out)
  const publicKey = await writeSigningKeyPair(values.out)
  const tlsFingerprint = await writeTlsIdentity(values.out, site)
  process.stderr.write(`wrote seal.key, sign.key, tls.key (secret) and seal.pub, sign.pub, tls.crt in ${values.out}\n`)
  process.stdout.write(`${JSON.stringify({ id: site, publicKey, tlsFingerprint, sealPublicKey }, null, 2)}\n`)
}
