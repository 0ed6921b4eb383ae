import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port'
import type { Teardownable } from './teardownable'

/** Debian installs it in sbin. */
const BINARY = '/usr/sbin/nats-server'
const READY_TIMEOUT_MS = 30_000

/**
 * A real `nats-server -js` (Debian `nats-server`, installed by packaging/setup.sh) for one test:
 * loopback only, a free client port and a free monitoring port, its own JetStream store dir in a
 * temp folder. `kill()` ends it abruptly (SIGKILL) and `restart()` starts it again on the same
 * ports and store dir, so a test can show what JetStream keeps across a crash. Stopped by PID at
 * teardown, also on failure.
 */
export class NatsServer {
  private child?: ChildProcess
  private exited: Promise<void> = Promise.resolve()
  private stderr = ''

  private constructor (readonly port: number, readonly monitorPort: number, readonly storeDir: string, private readonly extraArgs: string[]) {}

  static async start (t: Teardownable): Promise<NatsServer> {
    const server = await NatsServer.create(t)
    await server.restart()
    return server
  }

  /**
   * A server with its ports and store dir, not started yet (restart() or spawn() starts it);
   * `extraArgs` are added to its command line (a cluster member's `--cluster` and `--routes`).
   */
  static async create (t: Teardownable, extraArgs: string[] = []): Promise<NatsServer> {
    const dir = await mkdtemp(join(tmpdir(), 'fedvm-nats-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const server = new NatsServer(await freePort(), await freePort(), join(dir, 'jetstream'), extraArgs)
    t.teardown(() => server.stop())
    return server
  }

  /** The name it runs under (JetStream's cluster info names servers by it). */
  get name (): string {
    return `fedvm-test-${this.port}`
  }

  get url (): string {
    return `nats://127.0.0.1:${this.port}`
  }

  get pid (): number | undefined {
    return this.running ? this.child?.pid : undefined
  }

  get running (): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  log (): string {
    return this.stderr
  }

  /** Starts the server (again) on the same ports and store dir; resolves once JetStream answers healthy. */
  async restart (): Promise<void> {
    this.spawn()
    await this.waitReady()
  }

  /**
   * Starts the process without waiting for it: a clustered server answers healthy only once a
   * quorum of its cluster runs, so a cluster spawns every member before it waits for any.
   */
  spawn (): void {
    if (this.running) throw new Error('nats-server is still running')
    const child = spawn(BINARY, [
      '-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort),
      '-js', '-sd', this.storeDir, '-n', this.name, ...this.extraArgs,
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.once('error', (err) => { this.stderr += `cannot start ${BINARY}: ${err.message}` })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr = (this.stderr + chunk).slice(-20_000) })
    this.child = child
    this.exited = new Promise((resolve) => child.once('close', () => resolve()))
  }

  /** Ends the server at once (SIGKILL, no clean shutdown), as a crash would. */
  async kill (): Promise<void> {
    if (this.running) this.child!.kill('SIGKILL')
    await this.exited
  }

  async stop (): Promise<void> {
    if (this.running) {
      this.child!.kill('SIGTERM')
      const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(resolve, 10_000, false))])
      if (!stopped) this.child!.kill('SIGKILL')
    }
    await this.exited
  }

  async waitReady (): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      if (!this.running) throw new Error(`nats-server exited: ${this.stderr.slice(-2000)}`)
      try {
        // JetStream-aware health: ready only once the store dir is recovered.
        const response = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz?js-enabled=true`)
        if (response.ok) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nats-server not ready within ${READY_TIMEOUT_MS} ms: ${this.stderr.slice(-2000)}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
