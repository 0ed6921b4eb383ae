#!/usr/bin/env node
import { VERSION } from '../../agent/build-info'
import { COMMANDS } from './commands'
import { EXIT, exitCodeOf, type ExitCode } from './exit-codes'
import { asksForHelp, commandHelp, overview, resolve, usageLine } from './help'

async function main (argv: string[]): Promise<ExitCode> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-V') {
    process.stdout.write(`fedvm ${VERSION}\n`)
    return EXIT.OK
  }
  if (name === undefined) {
    process.stderr.write(overview(COMMANDS, VERSION))
    return EXIT.USAGE
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(overview(COMMANDS, VERSION))
    return EXIT.OK
  }
  const asked = name === 'help' ? rest : argv
  const resolved = resolve(COMMANDS, asked)
  if (resolved === undefined) {
    process.stderr.write(`fedvm: unknown command "${asked[0]}"\n\n${overview(COMMANDS, VERSION)}`)
    return EXIT.USAGE
  }
  if (name === 'help' && asked.length > 1 && resolved.sub === undefined) {
    process.stderr.write(`fedvm help: "${asked[0]}" has no sub-command "${asked[1]}"\n${usageLine(resolved)}`)
    return EXIT.USAGE
  }
  if (name === 'help' || asksForHelp(rest)) {
    process.stdout.write(commandHelp(resolved))
    return EXIT.OK
  }
  try {
    await (await resolved.command.load()).run(rest)
    return EXIT.OK
  } catch (err) {
    const code = exitCodeOf(err)
    process.stderr.write(`fedvm ${name}: ${err instanceof Error ? err.message : String(err)}\n`)
    if (code === EXIT.USAGE) process.stderr.write(usageLine(resolved))
    return code
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code })
