import { basename, join } from 'node:path'
import { HypervisorError } from '../errors'

/**
 * Pure edits of a libvirt domain XML, on libvirt's own output (dumpxml): every `<source>` path a VM
 * carries with it (disks, serial logs, channel sockets) is a `file=` or `path=` attribute of a
 * `<source>` element. Kernel and initrd paths are the host's, not the VM's, and are left alone.
 */
const SOURCE_TAG = /<source\b[^>]*>/g
const PATH_ATTR = /\b(file|path)=(?:'([^']*)'|"([^"]*)")/g

/** The files of the domain's disks; throws for a disk a file copy cannot carry. */
export function diskFiles (xml: string): string[] {
  const files: string[] = []
  for (const disk of xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? []) {
    const type = attribute(/<disk\b[^>]*>/.exec(disk)?.[0], 'type')
    const source = attribute(/<source\b[^>]*>/.exec(disk)?.[0], 'file')
    if (source === undefined && type === 'file') continue // an empty cdrom drive
    if (type !== 'file' || source === undefined) throw new HypervisorError('UNSUPPORTED_VM', `a disk of type ${String(type)} cannot be copied as a file`)
    files.push(source)
  }
  return files
}

/** The XML with every `<source>` path moved into `dir`, file name kept. */
export function rewriteSourcePaths (xml: string, dir: string): string {
  return xml.replace(SOURCE_TAG, (tag) => tag.replace(PATH_ATTR, (_all, attr: string, single?: string, double?: string) =>
    `${attr}='${escapeXml(join(dir, basename(unescapeXml(single ?? double ?? ''))))}'`))
}

/** The domain's name element. */
export function domainName (xml: string): string | undefined {
  const name = /<name>([^<]*)<\/name>/.exec(xml)?.[1]
  return name === undefined ? undefined : unescapeXml(name)
}

/** An attribute's unescaped value in one start tag, either quote style. */
export function attribute (tag: string | undefined, name: string): string | undefined {
  const m = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag ?? '')
  return m === null ? undefined : unescapeXml(m[1] ?? m[2])
}

function unescapeXml (s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' } as Record<string, string>)[e])
}

function escapeXml (s: string): string {
  return s.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' } as Record<string, string>)[c])
}
