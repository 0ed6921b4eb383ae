import { spawn, type ChildProcess } from 'node:child_process'
import { FEDVM_JS } from '../../support/dist-paths'

/** The compiled CLI (build first: node_modules/.bin/tsc -p .; npm test does). */
export const fedvmJs = FEDVM_JS

/** Extra node options for site daemons, e.g. FEDVM_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (node refuses --cpu-prof in NODE_OPTIONS). */
const NODE_ARGS = (process.env.FEDVM_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  /** stdout parsed, if it is JSON. */
  json: any
}

export interface RunOptions {
  /** A command line `fedvm` runs under, e.g. netnsPrefix(NS) from test/support/federation/site-network. */
  prefix?: string[]
  timeoutMs?: number
}

/** Runs `fedvm ARGS` to completion (under `prefix`, if given). */
export function runFedvm (args: string[], { prefix = [], timeoutMs = 120_000 }: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [command, ...argv] = [...prefix, process.execPath, fedvmJs(), ...args]
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`fedvm ${args.join(' ')} took longer than ${timeoutMs} ms`)) }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      let json: unknown
      try { json = JSON.parse(stdout) } catch { json = undefined }
      resolve({ code, stdout, stderr, json })
    })
  })
}

/** A long-running `fedvm` process (a site daemon): started, awaited until it prints its first stdout line. */
export class FedvmDaemon {
  readonly child: ChildProcess
  stderr = ''
  private readonly ready: Promise<string>

  constructor (args: string[]) {
    this.child = spawn(process.execPath, [...NODE_ARGS, fedvmJs(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr!.on('data', (d) => { this.stderr += d })
    this.ready = new Promise((resolve, reject) => {
      let out = ''
      this.child.stdout!.on('data', (d) => {
        out += d
        const nl = out.indexOf('\n')
        if (nl >= 0) resolve(out.slice(0, nl))
      })
      this.child.once('exit', (code) => reject(new Error(`fedvm ${args.join(' ')} exited with ${code} before it was ready:\n${this.stderr}`)))
    })
  }

  async started (timeoutMs = 20_000): Promise<string> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms:\n${this.stderr}`)), timeoutMs) })
    try {
      return await Promise.race([this.ready, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Log events (JSON lines on stderr) seen so far. */
  events (): Array<Record<string, unknown>> {
    return this.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l) } catch { return {} } })
  }

  async waitForEvent (predicate: (e: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs
    while (Date.now() < until) {
      const found = this.events().find(predicate)
      if (found) return found
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error(`no such event within ${timeoutMs} ms:\n${this.stderr}`)
  }

  get alive (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Stops the process by its PID (SIGTERM, then SIGKILL) and waits for it to exit. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill(signal)
    const timer = setTimeout(() => { if (this.alive) this.child.kill('SIGKILL') }, 5000)
    await exited
    clearTimeout(timer)
  }
}
