#!/usr/bin/env node
import { VERSION } from '../../agent/build-info'
import { COMMANDS } from './commands'
import { EXIT } from '../../protocol/cli/exit-codes'
import { USAGE_ERROR_CODE } from '../../protocol/cli/usage-error'

const version = VERSION

function help (): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length))
  const lines = COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}\n      ${command.usage}`)
  return `fedvm ${version}: monitoring and migration of VMs in federated clouds\n\nCommands:\n${lines.join('\n')}\n`
}

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-V') {
    process.stdout.write(`fedvm ${version}\n`)
    return EXIT.OK
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help())
    return name === undefined ? EXIT.USAGE : EXIT.OK
  }
  const command = COMMANDS.find((candidate) => candidate.name === name)
  if (!command) {
    process.stderr.write(`fedvm: unknown command "${name}"\n\n${help()}`)
    return EXIT.USAGE
  }
  try {
    return await (await command.load()).run(rest)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    // By code, not class: each layer's command throws it, and node's parseArgs has its own codes.
    if (code === USAGE_ERROR_CODE || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`fedvm ${name}: ${(err as Error).message}\nusage: ${command.usage}\n`)
      return EXIT.USAGE
    }
    process.stderr.write(`fedvm ${name}: ${err instanceof Error ? err.message : String(err)}\n`)
    return EXIT.FAILURE
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code })
