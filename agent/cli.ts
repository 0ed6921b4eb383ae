import { parseArgs } from 'node:util'
import { UsageError } from '../protocol/cli/usage-error'
import { Agent } from './agent'
import { EXIT } from '../protocol/cli/exit-codes'

/** `fedvm agent run --config FILE`: runs until SIGINT/SIGTERM; SIGHUP reloads the config and descriptors. */
export async function run (argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string' } } })
  if (positionals[0] !== 'run' || positionals.length !== 1) throw new UsageError('the agent command is `fedvm agent run --config FILE`')
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
  return EXIT.OK
}
