import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Children, tail } from './children'
import { runStory } from './story'
import { dirStage } from './dir-stage'

/**
 * `fedvm demo [--vm] [--keep]`: three sites on 127.0.0.1 and a VM whose application writes KPIs,
 * placed by its primary site A through B to C; the KPIs relayed to A, a rule at A forcing a
 * migration, monitoring following the VM. Each step prints one line. Every process it starts is
 * stopped by PID and its temporary folder removed at the end, on failure and on Ctrl-C.
 */
export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { vm: { type: 'boolean' }, keep: { type: 'boolean' } }, strict: true, allowPositionals: false })
  const started = Date.now()
  const say = (line: string): void => { process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`) }
  const root = await mkdtemp(join(tmpdir(), 'fedvm-demo-'))
  await mkdir(join(root, 'logs'))
  const children = new Children(join(root, 'logs'))

  let cleaning: Promise<void> | undefined
  const cleanUp = async (): Promise<void> => {
    cleaning ??= (async () => {
      const count = children.count()
      const undone = await children.stopAll()
      if (values.keep === true) say(`stopped ${count} processes${undone.map((u) => `, ${u}`).join('')}; kept ${root}`)
      else {
        await rm(root, { recursive: true, force: true })
        say(`cleaned up: the ${count} processes it started are stopped (by PID)${undone.map((u) => `, ${u}`).join('')}, ${root} removed`)
      }
    })()
    await cleaning
  }
  let interrupted = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return
    interrupted = true
    process.stdout.write(`\n${signal}: stopping the demo\n`)
    void cleanUp().then(() => process.exit(130), (err) => {
      process.stderr.write(`demo: clean-up failed: ${String(err)}\n`)
      process.exit(1)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let failure: unknown
  try {
    const stage = await (values.vm === true ? (await import('./vm-stage.js')).vmStage : dirStage)(children, root, say)
    await runStory(stage, children, say)
  } catch (err) {
    if (interrupted) await new Promise(() => {}) // the signal handler cleans up and exits
    failure = err
    for (const name of ['site-a', 'site-b', 'site-c', 'agent-c1', 'agent-c2', 'guestfs', 'app']) {
      const log = children.output(name)
      if (log !== undefined && log.trim() !== '') process.stderr.write(`  ${name}'s last lines:\n${tail(log, 6)}\n`)
    }
  }
  if (interrupted) await new Promise(() => {})
  await cleanUp()
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  if (failure !== undefined) throw failure
  say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}
