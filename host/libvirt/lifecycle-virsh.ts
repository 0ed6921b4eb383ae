import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { HypervisorError } from '../errors'
import { parseDomInfos, parseNodeInfo, type Resources } from './lifecycle-resources'

const run = promisify(execFile)

/** libvirt's domain states as `virsh domstate` prints them. */
export type DomainState = 'running' | 'paused' | 'shut off' | 'shutdown' | 'crashed' | 'pmsuspended' | 'idle' | 'in shutdown' | 'blocked'

/**
 * Life-cycle calls through `virsh` subprocesses: they are rare (a migration makes a handful), so a
 * process each is fine, and virsh knows every call's arguments. The RPC client in rpc/ stays read-only.
 */
export class Virsh {
  constructor (readonly uri: string, private readonly timeoutMs = 120_000) {}

  async run (...args: string[]): Promise<string> {
    try {
      const { stdout } = await run('virsh', ['-q', '-c', this.uri, ...args], { maxBuffer: 1 << 24, timeout: this.timeoutMs })
      return stdout
    } catch (err) {
      const e = err as { stderr?: string, message: string }
      throw new HypervisorError('VIRSH_FAILED', `virsh ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err })
    }
  }

  /** The domain's state, or undefined when no such domain is defined or running. */
  async state (domain: string): Promise<DomainState | undefined> {
    try {
      return (await this.run('domstate', domain)).trim() as DomainState
    } catch (err) {
      if (err instanceof HypervisorError && /failed to get domain|Domain not found/i.test(err.message)) return undefined
      throw err
    }
  }

  async names (): Promise<string[]> {
    return (await this.run('list', '--all', '--name')).split('\n').map((s) => s.trim()).filter(Boolean)
  }

  /** The machine's memory and CPUs. */
  async nodeInfo (): Promise<Resources> {
    return parseNodeInfo(await this.run('nodeinfo'))
  }

  /** Memory and vCPUs of every defined domain, running or not (a shut-off one may start again). */
  async domainResources (): Promise<Resources[]> {
    const uuids = (await this.run('list', '--all', '--uuid')).split('\n').map((s) => s.trim()).filter((s) => /^[0-9a-f-]{36}$/i.test(s))
    if (uuids.length === 0) return []
    // One virsh process for all of them: commands separated by ";" (UUIDs need no quoting).
    const infos = parseDomInfos(await this.run(uuids.map((u) => `dominfo ${u}`).join(' ; ')))
    if (infos.length !== uuids.length) throw new HypervisorError('VIRSH_FAILED', `virsh dominfo answered for ${infos.length} of ${uuids.length} domains`)
    return infos
  }

  /** Stops the domain at once (it is being removed or rolled back, not shut down politely). */
  async destroyIfActive (domain: string): Promise<void> {
    const state = await this.state(domain)
    if (state !== undefined && state !== 'shut off') await this.run('destroy', domain)
  }

  async undefineIfDefined (domain: string): Promise<void> {
    if (await this.state(domain) === undefined) return
    await this.run('undefine', domain)
  }
}
