import { parseArgs } from 'node:util'
import { Agent } from './agent'
import { printDeadLetters } from './outputs/dead-letters-command'
import { requeueDeadLettersCommand } from './outputs/requeue-dead-letters-command'

/** A command line that cannot be run as given; fedvm's dispatcher knows it by its code and shows the usage. */
class UsageError extends Error {
  readonly code = 'usage'
}

/**
 * `fedvm agent run --config FILE`: runs until SIGINT/SIGTERM; SIGHUP reloads the config and descriptors.
 * `fedvm agent dead-letters --config FILE`: prints the deliveries refused for good; with
 * `--requeue (--id N ... | --all) [--reason CODE]` moves them back into the outbox.
 */
export async function run (argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: {
    config: { type: 'string' },
    consumer: { type: 'string' },
    limit: { type: 'string' },
    requeue: { type: 'boolean' },
    id: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    reason: { type: 'string' },
  } })
  if (positionals[0] !== 'run' && positionals[0] !== 'dead-letters') throw new UsageError(positionals[0] === undefined ? 'a sub-command is missing (run, dead-letters)' : `unknown agent sub-command "${positionals[0]}"`)
  if (positionals.length !== 1) throw new UsageError(`unexpected argument "${positionals[1]}"`)
  if (!values.config) throw new UsageError('--config FILE is required')
  const requeueFlags = values.id !== undefined || values.all === true || values.reason !== undefined
  if (positionals[0] === 'dead-letters' && values.requeue === true) {
    if (values.limit !== undefined) throw new UsageError('--limit goes with listing, not with --requeue')
    if (values.id !== undefined && values.all === true) throw new UsageError('--id and --all exclude each other')
    if (values.id === undefined && values.all !== true) throw new UsageError('--requeue needs --id N (repeatable) or --all')
    const seqs = values.id?.map((id) => {
      const seq = Number(id)
      if (!Number.isInteger(seq) || seq < 1) throw new UsageError(`--id must be a dead letter's seq (a whole number above 0), not "${id}"`)
      return seq
    })
    const moved = await requeueDeadLettersCommand({ config: values.config, seqs, consumer: values.consumer, reason: values.reason }, (line) => process.stdout.write(`${line}\n`))
    process.stderr.write(`fedvm agent dead-letters: ${moved} deliver${moved === 1 ? 'y' : 'ies'} moved back to the outbox\n`)
    return
  }
  if (requeueFlags) throw new UsageError('--id, --all and --reason go with --requeue')
  if (positionals[0] === 'dead-letters') {
    const limit = values.limit === undefined ? 1000 : Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number above 0, not "${values.limit}"`)
    await printDeadLetters({ config: values.config, consumer: values.consumer, limit }, (line) => process.stdout.write(`${line}\n`))
    return
  }
  if (values.consumer !== undefined || values.limit !== undefined || values.requeue === true) throw new UsageError('--consumer, --limit and --requeue go with dead-letters')
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
