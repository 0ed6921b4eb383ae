import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { UsageError } from '../errors'
import { decodeKey } from './key-files'
import { readStdin } from './read-stdin'
import { seal } from './sealed-box'

/** The argument is the key itself when it reads as one, else a file holding it. */
async function publicKeyArgument (value: string): Promise<Uint8Array> {
  try {
    return decodeKey('--to', value)
  } catch {
    return decodeKey(`--to ${value}`, await readFile(value, 'utf8'))
  }
}

/** `fedvm seal --to KEY`: stdin → sealed box on stdout. KEY is the base64 public key or a file holding it. */
export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { to: { type: 'string' } } })
  if (!values.to) throw new UsageError('--to PRIMARY_PUBLIC_KEY is required (base64, or a file holding it)')
  const sealed = await seal(await readStdin(), await publicKeyArgument(values.to))
  process.stdout.write(sealed)
}
