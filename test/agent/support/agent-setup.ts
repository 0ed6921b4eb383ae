import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { generateBoxKeyPair, type BoxKeyPair } from '../../../protocol/crypto/sealed-box'
import { TestMount } from '../../support/guestfs-mount'
import { AgentProcess } from './agent-process'
import type { Teardownable } from '../../support/teardownable'
import { freePort } from '../../support/free-port'

export const VM = 'web-1'

export interface SetupOptions {
  /** The descriptor's monitoring specifiers. */
  monitoring: unknown[]
  /** Push consumer URLs. */
  consumers?: string[]
  /** Mount guestfs serving the feed on `feedPath` (default), or leave the socket to the test (a fake guest). */
  guestfs?: boolean
}

/**
 * Everything one agent test runs on: a temp dir with the agent's config, the VM's descriptor
 * (the primary site's sealing key is generated here), the feed socket path and the state dir; a
 * free port for /metrics; guestfs mounted with `--feed unix:PATH`; agent processes started,
 * killed and restarted on the same config. Everything is stopped by PID and removed at teardown.
 */
export class AgentSetup {
  readonly configFile: string
  readonly descriptorFile: string
  readonly feedPath: string
  readonly agents: AgentProcess[] = []
  mount?: TestMount

  private constructor (private readonly t: Teardownable, readonly dir: string, readonly keys: BoxKeyPair, readonly port: number) {
    this.configFile = join(dir, 'agent.json')
    this.descriptorFile = join(dir, `${VM}.json`)
    this.feedPath = join(dir, 'feed.sock')
  }

  static async create (t: Teardownable, options: SetupOptions): Promise<AgentSetup> {
    const dir = await mkdtemp(join(tmpdir(), 'fedvm-agent-test-'))
    // Forced: it may run before or after the processes using the folder are stopped.
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const setup = new AgentSetup(t, dir, await generateBoxKeyPair(), await freePort())
    await setup.writeDescriptor(options.monitoring)
    await setup.writeConfig({ consumers: (options.consumers ?? []).map((url) => ({ type: 'http', url })) })
    if (options.guestfs !== false) setup.mount = await TestMount.create(t, { extraArgs: setup.guestfsArgs })
    return setup
  }

  get guestfsArgs (): string[] {
    return ['--feed', `unix:${this.feedPath}`]
  }

  get agent (): AgentProcess {
    const agent = this.agents[this.agents.length - 1]
    if (!agent) throw new Error('no agent started yet')
    return agent
  }

  get stateDb (): string {
    return join(this.dir, 'state', 'agent.db')
  }

  /** The descriptor as JSON (any content: tests write invalid ones too). */
  async writeDescriptor (monitoring: unknown[], extra: Record<string, unknown> = {}): Promise<void> {
    const descriptor = { id: VM, primarySite: { id: 'site-a', publicKey: Buffer.from(this.keys.publicKey).toString('base64') }, monitoring, ...extra }
    await writeFile(this.descriptorFile, JSON.stringify(descriptor, null, 2))
  }

  /** The config with relative paths (they are resolved from the config's folder). */
  async writeConfig (overrides: Record<string, unknown> = {}): Promise<void> {
    const config = {
      listen: `127.0.0.1:${this.port}`,
      stateDir: 'state',
      vms: [{ name: VM, descriptor: `${VM}.json`, feed: 'unix:feed.sock' }],
      consumers: [],
      ...overrides,
    }
    await writeFile(this.configFile, JSON.stringify(config, null, 2))
  }

  async startAgent (options: { ready?: boolean } = {}): Promise<AgentProcess> {
    const agent = await AgentProcess.start(this.t, this.configFile, this.port, { cwd: '/', ...options })
    this.agents.push(agent)
    return agent
  }

  /** Every agent process's log, oldest first. */
  agentLog (): string {
    return this.agents.map((agent) => agent.log()).join('')
  }

  /** The agent's persisted feed cursor, read from its database by another connection (0 before any). */
  cursor (): bigint {
    const db = new Database(this.stateDb, { readonly: true, fileMustExist: true })
    try {
      const seq = db.prepare('SELECT seq FROM feed_cursors WHERE vm = ?').pluck().get(VM) as string | undefined
      return seq === undefined ? 0n : BigInt(seq)
    } finally {
      db.close()
    }
  }

  /** Writes one sample to unencrypted/NAME through the mount, as an application does; 'ok' or the errno. */
  async write (name: string, csv: string): Promise<string> {
    const mount = this.mount!
    return mount.app.outcome({ op: 'write', path: mount.path('unencrypted', name), data: csv })
  }
}
