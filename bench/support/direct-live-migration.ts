/**
 * The peer of fedvm's live path: a direct client-managed `virsh migrate --live --copy-storage-all`
 * between two libvirtds, QEMU's migration and NBD streams over unix sockets (the two libvirtds run in
 * separate network namespaces on one machine; the socket path is the same file for both ends), no
 * proxies, no protocol, no admin boundary.
 */
import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { rewriteSourcePaths } from '../../host/libvirt/lifecycle-xml'
import type { LibvirtHost } from '../../test/support/vm/libvirt-host'

/**
 * Moves the running domain `name` from `src` to `dst`, its files (disk, console socket) into
 * `dstDir`; `socketDir` holds the two stream sockets for the time of the migration. The Source's
 * folder `srcDir` is removed afterwards, as fedvm's Source does.
 */
export async function directLiveMigrate (o: { src: LibvirtHost, dst: LibvirtHost, name: string, srcDir: string, dstDir: string, socketDir: string }): Promise<void> {
  await mkdir(o.dstDir, { recursive: true })
  await mkdir(o.socketDir, { recursive: true })
  const xmlFile = join(o.dstDir, 'migrate.xml')
  await writeFile(xmlFile, rewriteSourcePaths(await o.src.virsh('dumpxml', o.name, '--migratable'), o.dstDir))
  // The NBD target must exist at its full size before Perform.
  const size = Number(/Capacity:\s+(\d+)/.exec(await o.src.virsh('domblkinfo', o.name, 'vda'))?.[1])
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`virsh domblkinfo ${o.name} vda gave no capacity`)
  const disk = await open(join(o.dstDir, `${o.name}.img`), 'w')
  await disk.truncate(size)
  await disk.close()
  await o.src.virsh('migrate', '--live', '--copy-storage-all', '--persistent', '--undefinesource', '--xml', xmlFile, o.name, o.dst.uri,
    '--migrateuri', `unix://${join(o.socketDir, 'q.sock')}`, '--disks-uri', `unix://${join(o.socketDir, 'n.sock')}`)
  await rm(o.srcDir, { recursive: true, force: true })
}
