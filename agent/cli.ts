import { parseArgs } from 'node:util'
import { Agent } from './agent'
import { printDeadLetters } from './state/dead-letters-command'

/** A command line that cannot be run as given; fedvm's dispatcher knows it by its code and shows the usage. */
class UsageError extends Error {
  readonly code = 'usage'
}

/**
 * `fedvm agent run --config FILE`: runs until SIGINT/SIGTERM; SIGHUP reloads the config and descriptors.
 * `fedvm agent dead-letters --config FILE`: prints the deliveries refused for good.
 */
export async function run (argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string' }, consumer: { type: 'string' }, limit: { type: 'string' } } })
  if (positionals[0] !== 'run' && positionals[0] !== 'dead-letters') throw new UsageError(positionals[0] === undefined ? 'a sub-command is missing (run, dead-letters)' : `unknown agent sub-command "${positionals[0]}"`)
  if (positionals.length !== 1) throw new UsageError(`unexpected argument "${positionals[1]}"`)
  if (!values.config) throw new UsageError('--config FILE is required')
  if (positionals[0] === 'dead-letters') {
    const limit = values.limit === undefined ? 1000 : Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number above 0, not "${values.limit}"`)
    await printDeadLetters({ config: values.config, consumer: values.consumer, limit }, (line) => process.stdout.write(`${line}\n`))
    return
  }
  if (values.consumer !== undefined || values.limit !== undefined) throw new UsageError('--consumer and --limit go with dead-letters')
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
