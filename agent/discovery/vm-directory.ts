import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DESCRIPTOR, DOMAIN_XML } from '../../host/vm-folder/vm-folder'
import { domainName, kpiChannelSocket } from './domain-channel'

/** One VM folder as host/vm-folder/libvirt-host.ts lays it out: `vmDir/ID/descriptor.json`, `vmDir/ID/domain.xml`. */
export interface FoundVm {
  id: string
  descriptorFile: string
  /** The descriptor's text as read (the agent re-applies it only when it changes). */
  descriptorText: string
  /** The libvirt domain: the domain XML's `<name>`, else the folder's name. */
  domain: string
  /** The host end of the VM's KPI channel (from domain.xml), if it has one. */
  feedSocket?: string
  /** Whether the folder has a domain.xml (LibvirtVmHost removes it when a VM that was to leave stays). */
  hasDomainXml: boolean
}

/** What discovery reads a VM folder through (a fake in unit tests). */
export interface VmDirectoryReader {
  readonly vmDir: string
  scan: () => Promise<FoundVm[]>
}


/**
 * Lists the VM folders of a host's VM directory. Book-keeping folders (`.incoming`, `.leaving`,
 * `.confirming`: any name starting with a dot) are not VMs; a folder without a descriptor is not
 * (yet) a VM. A missing VM directory holds no VMs.
 */
export class VmDirectory implements VmDirectoryReader {
  constructor (readonly vmDir: string) {}

  async scan (): Promise<FoundVm[]> {
    let entries
    try {
      entries = await readdir(this.vmDir, { withFileTypes: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const found: FoundVm[] = []
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue
      const vm = await this.read(entry.name)
      if (vm) found.push(vm)
    }
    return found.sort((a, b) => a.id.localeCompare(b.id))
  }

  private async read (id: string): Promise<FoundVm | undefined> {
    const dir = join(this.vmDir, id)
    const descriptorFile = join(dir, DESCRIPTOR)
    const descriptorText = await readOptional(descriptorFile)
    if (descriptorText === undefined) return undefined
    // A running VM whose domain.xml is absent (LibvirtVmHost writes it when the VM arrives or leaves)
    // is still followed for its libvirt stats, under the folder's name.
    const xml = await readOptional(join(dir, DOMAIN_XML))
    return { id, descriptorFile, descriptorText, domain: (xml && domainName(xml)) || id, feedSocket: xml === undefined ? undefined : kpiChannelSocket(xml), hasDomainXml: xml !== undefined }
  }
}

/** The file's text; undefined when it is not there (a folder being set up or removed). */
async function readOptional (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}
