/**
 * `fedvm` processes run inside a site's network namespace (nsenter execs node: the PID is node's).
 * A daemon's stderr is kept in memory and appended to a log file, so a test can read its events
 * and grep everything a site ever logged.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { FEDVM_JS } from '../dist-paths'
import { runFedvm, type CliResult } from '../../protocol/support/fedvm-process'
import { inNetns, netnsPrefix } from './site-network'

/** Runs `fedvm ARGS` to completion in the namespace; `json` is its stdout parsed, if it is JSON. */
export function runFedvmIn (netns: string, args: string[], timeoutMs = 180_000): Promise<CliResult> {
  return runFedvm(args, { prefix: netnsPrefix(netns), timeoutMs })
}

/** A long-running `fedvm` process (site daemon, agent) in a namespace. */
export class NetnsDaemon {
  readonly child: ChildProcess
  stderr = ''
  stdout = ''
  private readonly exited: Promise<void>

  constructor (netns: string, args: string[], readonly logFile: string) {
    const [command, argv] = inNetns(netns, process.execPath, [FEDVM_JS(), ...args])
    this.child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
    this.child.stdout!.on('data', (d: Buffer) => { this.stdout += d; appendFileSync(logFile, d) })
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d; appendFileSync(logFile, d) })
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()))
  }

  get pid (): number { return this.child.pid ?? -1 }

  get alive (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Waits until stdout or stderr holds `pattern`; fails early if the process exits. */
  async waitForOutput (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const found = pattern.exec(this.stdout) ?? pattern.exec(this.stderr)
      if (found !== null) return found
      if (!this.alive) throw new Error(`the process exited (${String(this.child.exitCode ?? this.child.signalCode)}) before printing ${pattern}:\n${this.stderr.slice(-3000)}`)
      if (Date.now() > until) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.stderr.slice(-3000)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Log events (JSON lines on stderr) seen so far. */
  events (): Array<Record<string, any>> {
    return this.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l) } catch { return {} } })
  }

  /** The first event (from the `from`-th on: skip those seen before) that matches. */
  async waitForEvent (predicate: (e: Record<string, any>) => boolean, timeoutMs = 60_000, from = 0): Promise<Record<string, any>> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const found = this.events().slice(from).find(predicate)
      if (found !== undefined) return found
      if (Date.now() > until) throw new Error(`no such event within ${timeoutMs} ms:\n${this.stderr.slice(-3000)}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Stops it by its PID (the signal, then SIGKILL after 5 s) and waits for it to exit. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return
    this.child.kill(signal)
    const timer = setTimeout(() => { if (this.alive) this.child.kill('SIGKILL') }, 5000)
    await this.exited
    clearTimeout(timer)
  }
}
