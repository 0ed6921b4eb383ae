import { spawn } from 'node:child_process'
import { fedvmJs } from './fedvm-process'

export interface TerminalRun {
  /** Everything the command wrote to its terminal, as written (`\r` redraws kept; the terminal turns `\n` into `\r\n`). */
  readonly output: () => string
  /** Resolves with the exit status once the command has ended. */
  readonly exited: Promise<number | null>
  /** Kills the command (its process group: `script` and the fedvm under it) if it is still running. */
  readonly stop: () => void
}

const quote = (word: string): string => `'${word.replaceAll("'", "'\\''")}'`

/**
 * Runs `fedvm ARGS` with a pseudo-terminal as its stdout and stderr (util-linux `script`), as a user at
 * a terminal runs it: `process.stdout.isTTY` is true in the command.
 */
export function runFedvmOnTerminal (args: string[]): TerminalRun {
  const command = [process.execPath, fedvmJs(), ...args].map(quote).join(' ')
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  child.stderr.on('data', (d) => { output += d })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve(code))
  })
  return {
    output: () => output,
    exited,
    stop: () => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
      try { process.kill(-child.pid, 'SIGKILL') } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err }
    },
  }
}
