import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { HypervisorError } from '../errors'
import { backingFiles } from '../libvirt/lifecycle-disk-chain'
import { domainResources } from '../libvirt/lifecycle-resources'
import { diskFiles } from '../libvirt/lifecycle-xml'
import { DOMAIN_XML, isSafeFileName } from './vm-folder'
import type { Demand, VmFile, VmHost } from './vm-host'

/**
 * The source of a primary placement: a VM's files handed to the primary site in a directory of the
 * owner's. Placement is a cold migration from here; the owner's files are only read, never removed.
 */
export class IntakeHost implements VmHost {
  readonly id: string

  constructor (private readonly vmId: string, private readonly dir: string) {
    this.id = `intake:${vmId}`
  }

  async capacity (): Promise<{ used: number, max: number }> { return { used: 1, max: 0 } }
  async has (vmId: string): Promise<boolean> { return vmId === this.vmId }
  async prepareForLeaving (): Promise<void> {}
  async stayHere (): Promise<void> {}
  async receive (): Promise<string> { throw new Error('an intake directory receives nothing') }
  async confirm (): Promise<void> {}
  async abandon (): Promise<void> {}
  async release (): Promise<void> {}

  /** A libvirt VM handed in with its domain.xml needs what that XML gives it. */
  async demand (): Promise<Demand | undefined> {
    const xml = await readFile(join(this.dir, DOMAIN_XML), 'utf8').catch(() => undefined)
    return xml === undefined ? undefined : domainResources(xml)
  }

  async listFiles (): Promise<VmFile[]> {
    const paths: string[] = []
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (entry.isFile() && isSafeFileName(entry.name)) paths.push(join(this.dir, entry.name))
    }
    // A disk that is a qcow2 overlay brings its base images along (they may live outside the folder).
    const xml = await readFile(join(this.dir, DOMAIN_XML), 'utf8').catch(() => undefined)
    for (const disk of xml === undefined ? [] : diskFiles(xml)) {
      const here = join(this.dir, basename(disk))
      if (paths.includes(here)) paths.push(...await backingFiles(here))
    }
    const files: VmFile[] = []
    for (const path of new Set(paths)) {
      const name = basename(path)
      if (!isSafeFileName(name) || files.some((f) => f.name === name)) throw new HypervisorError('UNSUPPORTED_VM', `a base image of ${this.vmId} is named ${JSON.stringify(name)}, which is not a plain name or names another file`)
      files.push({ name, size: (await stat(path)).size, path })
    }
    return files.sort((a, b) => a.name.localeCompare(b.name))
  }
}
