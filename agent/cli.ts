import { parseArgs } from 'node:util'
import { Agent } from './agent'

/** A command line that cannot be run as given; fedvm's dispatcher knows it by its code and shows the usage. */
class UsageError extends Error {
  readonly code = 'usage'
}

/** `fedvm agent run --config FILE`: runs until SIGINT/SIGTERM; SIGHUP reloads the config and descriptors. */
export async function run (argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string' } } })
  if (positionals[0] !== 'run') throw new UsageError(positionals[0] === undefined ? 'a sub-command is missing (run)' : `unknown agent sub-command "${positionals[0]}"`)
  if (positionals.length !== 1) throw new UsageError(`unexpected argument "${positionals[1]}"`)
  if (!values.config) throw new UsageError('--config FILE is required')
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const agent = await Agent.start(values.config, log)
  process.on('SIGHUP', () => void agent.reload())
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await agent.stop()
  log('agent: stopped')
}
