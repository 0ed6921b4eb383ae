import { parseArgs } from 'node:util'
import { UsageError } from '../../packaging/bin/usage-error'
import { SEAL_PUBLIC_FILE, SEAL_SECRET_FILE, writeSealKeyPair } from './key-files'

/** `fedvm keygen --out DIR`: a site's sealing key pair; prints the public key to hand to VM owners. */
export async function run (argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' } } })
  if (!values.out) throw new UsageError('--out DIR is required')
  const publicKey = await writeSealKeyPair(values.out)
  process.stderr.write(`wrote ${values.out}/${SEAL_SECRET_FILE} (secret) and ${values.out}/${SEAL_PUBLIC_FILE}\n`)
  process.stdout.write(`${publicKey}\n`)
  return 0
}
