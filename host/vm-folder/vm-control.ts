import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { DESCRIPTOR } from './vm-folder'

/**
 * What a host does for the paper's Control interface: change a VM's descriptor, its resources and
 * its run state while it is here. The descriptor lives in the VM's folder (`vmDir/ID/descriptor.json`),
 * where the host agent's discovery reads it.
 */

/** The run-state changes the Control interface asks for (paper II-A: shut down, start, suspend, resume). */
export const RUN_ACTIONS = ['shutdown', 'start', 'suspend', 'resume'] as const
export type RunAction = typeof RUN_ACTIONS[number]
export type RunState = 'running' | 'paused' | 'shut-off'

/** What came of a resources change on the running VM: each field applied, or why not. */
export interface ResourceOutcome {
  memoryMiB?: { applied: boolean, detail: string }
  vcpus?: { applied: boolean, detail: string }
}

/** The state each action leads to. */
export const RUN_TARGET: Record<RunAction, RunState> = { shutdown: 'shut-off', start: 'running', suspend: 'paused', resume: 'running' }

/** The states each action may start from (its own target included: a repeated request is answered again). */
const RUN_FROM: Record<RunAction, RunState[]> = {
  shutdown: ['running', 'paused', 'shut-off'],
  start: ['shut-off', 'running'],
  suspend: ['running', 'paused'],
  resume: ['paused', 'running'],
}

/** An action the VM's present state does not allow (suspending a VM that is shut off). */
export class RunStateRefused extends Error {
  constructor (readonly from: RunState, readonly action: RunAction) {
    super(`cannot ${action} a VM that is ${from}`)
    this.name = 'RunStateRefused'
  }
}

/** Throws RunStateRefused when an action cannot run from a state. */
export function checkTransition (from: RunState, action: RunAction): void {
  if (!RUN_FROM[action].includes(from)) throw new RunStateRefused(from, action)
}

/** The descriptor in a VM folder, parsed; undefined when the folder has none. */
export async function readFolderDescriptor (vmFolder: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(join(vmFolder, DESCRIPTOR), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return JSON.parse(text)
}

/**
 * Rewrites a VM folder's descriptor atomically (a temporary file renamed over it): the agent reads
 * either the old or the new one, never a part. The temporary name starts with a dot so that
 * nothing takes it for a VM file.
 */
export async function writeFolderDescriptor (vmFolder: string, descriptor: unknown): Promise<void> {
  const temporary = join(vmFolder, `.${DESCRIPTOR}.${randomBytes(6).toString('hex')}`)
  await writeFile(temporary, `${JSON.stringify(descriptor, null, 2)}\n`, { flag: 'wx' })
  await rename(temporary, join(vmFolder, DESCRIPTOR))
}

/**
 * Run states recorded for hosts without a hypervisor (directory hosts): `vmDir/.run-state/ID`
 * holds the state; no file means running (a VM that arrives runs).
 */
export class RecordedRunStates {
  constructor (private readonly vmDir: string) {}

  async get (vmId: string): Promise<RunState> {
    try {
      const state = (await readFile(this.file(vmId), 'utf8')).trim()
      return state === 'paused' || state === 'shut-off' ? state : 'running'
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'running'
      throw err
    }
  }

  async set (vmId: string, state: RunState): Promise<void> {
    await mkdir(join(this.vmDir, '.run-state'), { recursive: true })
    const temporary = `${this.file(vmId)}.${randomBytes(6).toString('hex')}`
    await writeFile(temporary, `${state}\n`)
    await rename(temporary, this.file(vmId))
  }

  private file (vmId: string): string {
    return join(this.vmDir, '.run-state', vmId)
  }
}
