import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkTransition, readFolderDescriptor, RecordedRunStates, RUN_TARGET, writeFolderDescriptor, type RunAction, type RunState } from './vm-control'
import { isSafeFileName } from './vm-folder'
import type { VmFile, VmHost } from './vm-host'

/**
 * A VM host whose VMs are directories under `vmDir`: `vmDir/ID/` is the VM, `vmDir/.incoming/ID/`
 * holds a transfer in progress and `vmDir/.leaving/ID` marks a VM prepared for leaving.
 */
export class DirHost implements VmHost {
  private readonly runStates: RecordedRunStates

  constructor (readonly id: string, private readonly vmDir: string, private readonly maxVms: number) {
    this.runStates = new RecordedRunStates(vmDir)
  }

  async capacity (): Promise<{ used: number, max: number }> {
    await mkdir(this.vmDir, { recursive: true })
    const entries = await readdir(this.vmDir, { withFileTypes: true })
    return { used: entries.filter((e) => e.isDirectory() && isSafeFileName(e.name)).length, max: this.maxVms }
  }

  async has (vmId: string): Promise<boolean> {
    return isDirectory(this.vmPath(vmId))
  }

  async prepareForLeaving (vmId: string): Promise<void> {
    await mkdir(join(this.vmDir, '.leaving'), { recursive: true })
    await writeFile(join(this.vmDir, '.leaving', vmId), `${Date.now()}\n`)
  }

  async stayHere (vmId: string): Promise<void> {
    await rm(join(this.vmDir, '.leaving', vmId), { force: true })
  }

  async listFiles (vmId: string): Promise<VmFile[]> {
    const dir = this.vmPath(vmId)
    const files: VmFile[] = []
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isFile() || !isSafeFileName(entry.name)) continue
      const path = join(dir, entry.name)
      files.push({ name: entry.name, size: (await stat(path)).size, path })
    }
    return files.sort((a, b) => a.name.localeCompare(b.name))
  }

  async receive (vmId: string): Promise<string> {
    const dir = join(this.vmDir, '.incoming', vmId)
    await mkdir(dir, { recursive: true })
    return dir
  }

  async confirm (vmId: string): Promise<void> {
    const incoming = join(this.vmDir, '.incoming', vmId)
    if (!await isDirectory(incoming)) return
    await rm(this.vmPath(vmId), { recursive: true, force: true })
    await rename(incoming, this.vmPath(vmId))
  }

  async abandon (vmId: string): Promise<void> {
    await rm(join(this.vmDir, '.incoming', vmId), { recursive: true, force: true })
  }

  async release (vmId: string): Promise<void> {
    await rm(this.vmPath(vmId), { recursive: true, force: true })
    await rm(join(this.vmDir, '.leaving', vmId), { force: true })
    await rm(join(this.vmDir, '.run-state', vmId), { force: true })
  }

  async readDescriptor (vmId: string): Promise<unknown> {
    return readFolderDescriptor(this.vmPath(vmId))
  }

  async writeDescriptor (vmId: string, descriptor: unknown): Promise<void> {
    await writeFolderDescriptor(this.vmPath(vmId), descriptor)
  }

  /** A directory host runs nothing: it records the state the VM is to be in (vm-control.ts RecordedRunStates). */
  async changeRunState (vmId: string, action: RunAction): Promise<RunState> {
    const from = await this.runStates.get(vmId)
    checkTransition(from, action)
    const to = RUN_TARGET[action]
    if (to !== from) await this.runStates.set(vmId, to)
    return to
  }

  private vmPath (vmId: string): string {
    if (!isSafeFileName(vmId)) throw new Error(`VM id ${JSON.stringify(vmId)} is not a plain name`)
    return join(this.vmDir, vmId)
  }
}

async function isDirectory (path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}
