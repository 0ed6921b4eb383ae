import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isFuseMounted } from '../../guestfs/fuse/mount-table'
import { FEDVM_JS, type Children, type Daemon } from './children'

const run = promisify(execFile)

/**
 * The application inside the VM: it saves its users count every half second as a plain file in
 * guestfs, and once, at start, its revenue sealed for the primary site (`fedvm seal`). SIGUSR1 is a
 * traffic surge: the count jumps above 1000. `/usr/bin/printf` rather than bash's builtin, so a
 * value guestfs refuses at close() is reported.
 */
const APPLICATION = `
set -u
cd "$1"
printf '%s' "$3" | "$NODE" "$FEDVM_JS" seal --to "$2" > encrypted/revenue || echo "app: revenue refused" >&2
surge=0
trap 'surge=1' USR1
trap 'exit 0' TERM INT
while :; do
  if [ "$surge" = 1 ]; then users=$((1200 + RANDOM % 200)); else users=$((40 + RANDOM % 30)); fi
  /usr/bin/printf 'current_users\\n%d\\n' "$users" > unencrypted/users || echo "app: users refused" >&2
  sleep 0.5
done
`

export const REVENUE = '4711.50'

/** What a VM is for the directory hosts: its files (moved by the sites) and its guest (staying where it runs). */
export interface DirVm {
  id: string
  /** The folder handed to `fedvm site place`: disk, domain.xml, descriptor.json. */
  intake: string
  mountpoint: string
  app: Daemon
  guestfs: Daemon
}

/**
 * A directory-host VM whose guest is real: `fedvm guestfs mount` serving the KPI feed on a unix
 * socket and a shell script writing KPIs into it. Directory hosts run nothing, so the guest stays
 * on this machine while the VM's files move between hosts; its domain.xml names the feed socket as
 * the `org.fedvm.kpi.0` channel, which is how the agent of whichever host holds the files finds it.
 */
export async function startDirVm (children: Children, root: string, vm: { id: string, descriptor: Record<string, unknown>, sealPublicKeyFile: string }): Promise<DirVm> {
  const guest = join(root, 'guest')
  const mountpoint = join(guest, 'kpi')
  const feed = join(guest, 'kpi.sock')
  await mkdir(mountpoint, { recursive: true })
  const intake = join(root, 'intake', vm.id)
  await mkdir(intake, { recursive: true })
  await writeFile(join(intake, 'disk.img'), randomBytes(4 * 2 ** 20))
  await writeFile(join(intake, 'domain.xml'), domainXml(vm.id, feed))
  await writeFile(join(intake, 'descriptor.json'), `${JSON.stringify(vm.descriptor, null, 2)}\n`)

  const guestfs = children.start('guestfs', ['guestfs', 'mount', mountpoint, '--db', join(guest, 'kpi.db'), '--feed', `unix:${feed}`])
  children.afterStop(async () => await unmountLeftover(mountpoint) ? `a stale mount on ${mountpoint} detached` : 'guestfs unmounted')
  await guestfs.waitFor(/^guestfs: mounted /m, 20_000)
  if (!await isFuseMounted(mountpoint)) throw new Error(`guestfs said it mounted ${mountpoint}, but /proc/mounts does not list it`)
  const app = children.start('app', ['-c', APPLICATION, 'app', mountpoint, vm.sealPublicKeyFile, REVENUE], {
    command: 'bash',
    env: { ...process.env, NODE: process.execPath, FEDVM_JS },
  })
  return { id: vm.id, intake, mountpoint, app, guestfs }
}

/** After guestfs stopped: a mount it could not remove (it was killed) is detached lazily. */
async function unmountLeftover (mountpoint: string): Promise<boolean> {
  if (!await isFuseMounted(mountpoint)) return false
  await run('fusermount', ['-uz', mountpoint])
  return true
}

function domainXml (id: string, feedSocket: string): string {
  return `<domain type='qemu'>
  <name>${id}</name>
  <devices>
    <channel type='unix'>
      <source mode='bind' path='${feedSocket}'/>
      <target type='virtio' name='org.fedvm.kpi.0'/>
    </channel>
  </devices>
</domain>
`
}
