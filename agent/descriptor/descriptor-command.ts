import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { readStdin } from '../../protocol/crypto/read-stdin'
import { isOvf } from '../../protocol/ovf/descriptor-document'
import { DescriptorFormatError } from '../../protocol/ovf/errors'
import { intoEnvelope } from '../../protocol/ovf/into-envelope'
import { descriptorToOvf } from '../../protocol/ovf/write-ovf'
import { UsageError } from '../../protocol/errors'
import { AgentError } from '../errors'
import { descriptorFromText } from './descriptor-text'

/** What an envelope carries of a descriptor; any other key (Contract 3 lets them pass through) stays behind. */
const CARRIED: Readonly<Record<string, readonly string[] | undefined>> = {
  id: undefined,
  primarySite: ['id', 'publicKey'],
  resources: ['memoryMiB', 'vcpus'],
  monitoring: undefined,
}

/**
 * `fedvm descriptor from-ovf FILE.ovf` prints the JSON descriptor an OVF envelope holds;
 * `fedvm descriptor to-ovf FILE.json` prints the envelope for a JSON descriptor. Either checks the
 * descriptor against its schema first, so neither prints a descriptor fedvm would refuse. `-` reads stdin;
 * `--configuration ID` reads the hardware of that deployment option of the envelope; `--into PACKAGE.ovf`
 * prints that envelope (a tool's export) with fedvm's section added instead of an envelope of fedvm's own.
 */
export async function run (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { configuration: { type: 'string' }, into: { type: 'string' } }, allowPositionals: true })
  const [sub, file, ...extra] = positionals
  if (sub !== 'from-ovf' && sub !== 'to-ovf') {
    throw new UsageError(sub === undefined ? 'a sub-command is missing (from-ovf, to-ovf)' : `unknown descriptor sub-command ${JSON.stringify(sub)}`)
  }
  if (file === undefined) throw new UsageError(`${sub} needs the descriptor FILE (or - for standard input)`)
  if (extra.length > 0) throw new UsageError(`one FILE only (also given: ${extra.join(' ')})`)
  const source = file === '-' ? 'stdin' : file
  const text = file === '-' ? (await readStdin()).toString('utf8') : await readFile(file, 'utf8')
  if ((sub === 'from-ovf') !== isOvf(text)) {
    throw new AgentError('DESCRIPTOR_INVALID', `${source}: ${sub === 'from-ovf' ? 'is not an OVF envelope (XML)' : 'is an OVF envelope already: to-ovf reads a JSON descriptor'}`)
  }
  if (values.configuration !== undefined && sub !== 'from-ovf') throw new UsageError('--configuration belongs to from-ovf (an envelope\'s deployment option)')
  if (values.into !== undefined && sub !== 'to-ovf') throw new UsageError('--into belongs to to-ovf (the package\'s envelope to add fedvm\'s section to)')
  const descriptor = descriptorFromText(text, source, { configuration: values.configuration })
  if (sub === 'from-ovf') {
    process.stdout.write(`${JSON.stringify(descriptor, null, 2)}\n`)
    return
  }
  const left = notCarried(descriptor)
  if (left.length > 0) process.stderr.write(`fedvm descriptor: ${source}: not carried by the envelope: ${left.join(', ')}\n`)
  if (values.into === undefined) {
    process.stdout.write(descriptorToOvf(descriptor))
    return
  }
  const envelope = await readFile(values.into, 'utf8')
  try {
    process.stdout.write(intoEnvelope(envelope, descriptor))
  } catch (err) {
    throw err instanceof DescriptorFormatError ? err.in(values.into) : err
  }
}

function notCarried (descriptor: Record<string, unknown>): string[] {
  return Object.entries(descriptor).flatMap(([key, value]) => {
    if (!Object.hasOwn(CARRIED, key)) return [key]
    const fields = CARRIED[key]
    if (fields === undefined || typeof value !== 'object' || value === null) return []
    return Object.keys(value).filter((field) => !fields.includes(field)).map((field) => `${key}.${field}`)
  })
}
