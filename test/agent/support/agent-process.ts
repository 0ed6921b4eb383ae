import { spawn, type ChildProcess } from 'node:child_process'
import { FEDVM_JS } from '../../support/dist-paths'
import { watchExit, type ExitStatus } from '../../support/guestfs-mount'
import { waitFor } from '../../support/wait'
import type { Teardownable } from '../../support/teardownable'

/**
 * One `fedvm agent run --config FILE` child process (compiled dist/), its log (stderr), and its
 * /metrics. Stopped by PID at teardown (SIGTERM, then SIGKILL), also when the test failed.
 */
export class AgentProcess {
  private stderr = ''
  readonly exited: Promise<ExitStatus>

  private constructor (readonly child: ChildProcess, readonly metricsUrl: string) {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.exited = watchExit(child)
  }

  /** Starts the agent; resolves once it serves /metrics on `port` (unless `ready: false`). */
  static async start (t: Teardownable, configFile: string, port: number, options: { cwd?: string, ready?: boolean } = {}): Promise<AgentProcess> {
    const child = spawn(process.execPath, [FEDVM_JS(), 'agent', 'run', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'], cwd: options.cwd })
    const agent = new AgentProcess(child, `http://127.0.0.1:${port}/metrics`)
    t.teardown(() => agent.stop())
    if (options.ready !== false) {
      await waitFor('the agent to serve /metrics', () => {
        if (!agent.running) throw new Error(`the agent exited: ${agent.log()}`)
        return agent.log().includes('agent: serving /metrics on')
      }, 15_000)
    }
    return agent
  }

  get running (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  log (): string {
    return this.stderr
  }

  /** Lines of the log that match. */
  lines (pattern: RegExp): string[] {
    return this.stderr.split('\n').filter((line) => pattern.test(line))
  }

  /** Waits until at least `count` log lines match. */
  async waitForLog (pattern: RegExp, count = 1, timeoutMs = 10_000): Promise<string[]> {
    return waitFor(`${count} agent log line(s) matching ${pattern}`, () => {
      const lines = this.lines(pattern)
      return lines.length >= count && lines
    }, timeoutMs)
  }

  signal (signal: NodeJS.Signals): void {
    this.child.kill(signal)
  }

  /** SIGKILL, as a crash: no clean-up in the agent. */
  async kill (): Promise<ExitStatus> {
    if (this.running) this.child.kill('SIGKILL')
    return this.exited
  }

  async stop (): Promise<ExitStatus> {
    if (this.running) {
      this.child.kill('SIGTERM')
      const stopped = await Promise.race([this.exited, new Promise<null>((resolve) => setTimeout(resolve, 5000, null))])
      if (stopped === null) this.child.kill('SIGKILL')
    }
    return this.exited
  }

  async metrics (): Promise<string> {
    const response = await fetch(this.metricsUrl)
    if (!response.ok) throw new Error(`GET ${this.metricsUrl}: HTTP ${response.status}`)
    return response.text()
  }
}

/** The value of one series in a Prometheus text exposition, or undefined; labels must match exactly those given. */
export function seriesValue (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
    if (!match || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]] = pair[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const keys = Object.keys(labels)
    if (keys.length === Object.keys(found).length && keys.every((key) => found[key] === labels[key])) return Number(match[3])
  }
  return undefined
}
