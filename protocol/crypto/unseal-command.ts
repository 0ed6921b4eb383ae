import { parseArgs } from 'node:util'
import { UsageError } from '../errors'
import { readSealKeyPair } from './key-files'
import { readStdin } from './read-stdin'
import { unseal } from './sealed-box'

/** `fedvm unseal --key FILE`: the secret key is read from a file, never taken on the command line (ps shows it). */
export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { key: { type: 'string' } } })
  if (!values.key) throw new UsageError('--key PRIMARY_SECRET_KEY_FILE is required')
  const opened = await unseal(await readStdin(), await readSealKeyPair(values.key))
  process.stdout.write(opened)
}
