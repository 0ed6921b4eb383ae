import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'

/** The fedvm command the demo drives, as a user would run it: this very build's CLI. */
export const FEDVM_JS = join(__dirname, '..', 'bin', 'fedvm.js')

export interface CommandResult { code: number | null, stdout: string, stderr: string }

/** A long-running child: its log so far, and a way to wait for a line in it. */
export interface Daemon {
  readonly name: string
  readonly pid: number
  /** stdout and stderr as written so far. */
  output (): string
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first or time runs out. */
  waitFor (pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>
  /** The JSON lines the process logged (the site daemon's events). */
  events (): Array<Record<string, unknown>>
  readonly exited: Promise<void>
}

interface Tracked { name: string, child: ChildProcess, exited: Promise<void>, stopSignal: NodeJS.Signals }

/**
 * Every process the demo starts, by PID. Each runs in its own process group (detached), so a Ctrl-C
 * at the terminal reaches the demo alone and the demo stops them in the reverse order of their
 * start: the application before the filesystem it writes to, the agents before the sites they post
 * to. Once `stopAll` has begun nothing new starts.
 */
export class Children {
  private readonly tracked: Tracked[] = []
  private stopping?: Promise<string[]>
  private readonly outputs = new Map<string, () => string>()
  private readonly afterwards: Array<() => Promise<string | undefined>> = []

  constructor (private readonly logDir: string) {}

  /** Starts `fedvm ARGS` (or, with `command`, another program) and logs its output to logDir/NAME.log. */
  start (name: string, args: string[], o: { command?: string, env?: NodeJS.ProcessEnv, stopSignal?: NodeJS.Signals } = {}): Daemon {
    const child = this.spawn(name, o.command ?? process.execPath, o.command === undefined ? [FEDVM_JS, ...args] : args, o.env, o.stopSignal ?? 'SIGTERM')
    const log = createWriteStream(join(this.logDir, `${name}.log`))
    let text = ''
    const collect = (chunk: Buffer): void => { text += chunk.toString('utf8'); log.write(chunk) }
    child.stdout!.on('data', collect)
    child.stderr!.on('data', collect)
    const tracked = this.tracked.at(-1)!
    void tracked.exited.then(() => closeLog(log))
    const daemon: Daemon = {
      name,
      pid: child.pid!,
      output: () => text,
      exited: tracked.exited,
      events: () => text.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => { try { return [JSON.parse(l)] } catch { return [] } }), // the last line may still be arriving
      waitFor: async (pattern, timeoutMs) => {
        const until = Date.now() + timeoutMs
        let gone = false
        void tracked.exited.then(() => { gone = true })
        for (;;) {
          const match = pattern.exec(text)
          if (match !== null) return match
          if (gone) throw new Error(`${name} exited (${describeExit(child)}) before printing ${String(pattern)}:\n${tail(text)}`)
          if (Date.now() > until) throw new Error(`${name} did not print ${String(pattern)} within ${timeoutMs / 1000} s:\n${tail(text)}`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      },
    }
    this.outputs.set(name, daemon.output)
    return daemon
  }

  /** Runs `fedvm ARGS` to its end (killed after `timeoutMs`); `input` goes to its stdin. */
  async run (name: string, args: string[], o: { input?: Buffer | string, timeoutMs?: number } = {}): Promise<CommandResult> {
    const child = this.spawn(name, process.execPath, [FEDVM_JS, ...args], undefined, 'SIGTERM', o.input !== undefined)
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    if (o.input !== undefined) child.stdin!.end(o.input)
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), o.timeoutMs ?? 120_000)
    await this.tracked.find((t) => t.child === child)!.exited
    clearTimeout(timer)
    return { code: child.exitCode, stdout, stderr }
  }

  /** Something to undo once every child has stopped (a mount left by a killed guestfs); it says what it did, if anything. */
  afterStop (undo: () => Promise<string | undefined>): void {
    this.afterwards.push(undo)
  }

  /**
   * Stops every child still running, last started first (its stop signal, then SIGKILL after 10 s),
   * then runs the afterStop steps, last registered first; resolves with what they said.
   */
  async stopAll (): Promise<string[]> {
    this.stopping ??= (async () => {
      const said: string[] = []
      for (const t of [...this.tracked].reverse()) {
        if (await stop(t) === 'killed') said.push(`${t.name} did not exit within 10 s of ${t.stopSignal} and was killed`)
      }
      for (const undo of [...this.afterwards].reverse()) {
        const line = await undo()
        if (line !== undefined) said.push(line)
      }
      return said
    })()
    return await this.stopping
  }

  /** How many processes the demo started so far. */
  count (): number {
    return this.tracked.length
  }

  /** The output of the named long-running child, if one was started under that name. */
  output (name: string): string | undefined {
    return this.outputs.get(name)?.()
  }

  /** The PIDs of the children still running (the test checks none is left). */
  running (): number[] {
    return this.tracked.filter((t) => isRunning(t.child)).map((t) => t.child.pid!)
  }

  private spawn (name: string, command: string, args: string[], env: NodeJS.ProcessEnv | undefined, stopSignal: NodeJS.Signals, stdin = false): ChildProcess {
    if (this.stopping !== undefined) throw new Error(`the demo is stopping: ${name} is not started`)
    const child = spawn(command, args, { detached: true, env: env ?? process.env, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    const exited = new Promise<void>((resolve) => {
      child.once('close', () => resolve())
      child.once('error', () => resolve())
    })
    this.tracked.push({ name, child, exited, stopSignal })
    return child
  }
}

async function stop (t: Tracked): Promise<'stopped' | 'killed' | undefined> {
  if (!isRunning(t.child)) return undefined
  signalGroup(t.child, t.stopSignal)
  let killed = false
  const timer = setTimeout(() => {
    if (!isRunning(t.child)) return
    killed = true
    signalGroup(t.child, 'SIGKILL')
  }, 10_000)
  await t.exited
  clearTimeout(timer)
  return killed ? 'killed' : 'stopped'
}

/** The child leads its own process group (detached): the signal reaches what it started too (a shell's sleep). */
function signalGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

function isRunning (child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null
}

function describeExit (child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `status ${String(child.exitCode)}`
}

function closeLog (log: WriteStream): void {
  log.end()
}

/** The last lines of a log, for an error message. */
export function tail (text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n')
}
