/**
 * Builds, once per machine, what a test VM boots: Debian's own kernel as an uncompressed vmlinux
 * (TCG boots it in ~2.5 s instead of 8-12 s for vmlinuz) and a tiny busybox initramfs that loads
 * the virtio modules, configures eth0 (192.0.2.10/24) and then keeps touching its disk and
 * pinging the host bridge so block and interface counters move; with `fedvm.tick_ms=N` on the
 * kernel command line it also prints a numbered tick line on its console every N ms. Cached under
 * FEDVM_VM_CACHE (default /var/cache/fedvm-test) keyed by kernel version and init script, built in
 * a temp folder and renamed into place so concurrent test files never see half an image.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface GuestImage {
  kernel: string
  initramfs: string
  kernelVersion: string
  dir: string
}

/** Modules the initramfs loads, in dependency order as `modprobe --show-depends` lists them. */
const MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtio_balloon']

/** The guest's /init. Markers on the console tell the harness how far the guest got. */
export const GUEST_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m; done
echo "fedvm-guest: modules loaded"
ip link set lo up
if ip link set eth0 up 2>/dev/null; then ip addr add 192.0.2.10/24 dev eth0; fi
echo "fedvm-guest: ready"
# fedvm.tick_ms=N on the kernel command line: a numbered line on the console every N ms, which a
# host reading the console timestamps on its own clock (the guest's clock stands still while paused).
tick=$(sed -n 's/.*fedvm[.]tick_ms=\\([0-9]*\\).*/\\1/p' /proc/cmdline)
if [ -n "$tick" ]; then
  mkfifo /tmp/tick
  (exec 3<>/tmp/tick; i=0; pause=$(printf '%d.%03d' $((tick / 1000)) $((tick % 1000))); while true; do echo "fedvm-tick $i"; i=$((i + 1)); read -t "$pause" x <&3; done) &
fi
while true; do
  dd if=/dev/zero of=/dev/vda bs=4k count=16 conv=fsync 2>/dev/null
  dd if=/dev/vda of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null
  ping -c1 -W1 192.0.2.1 >/dev/null 2>&1
  sleep 1
done
`

export const READY_MARKER = 'fedvm-guest: ready'

export function cacheRoot (): string {
  return process.env.FEDVM_VM_CACHE ?? '/var/cache/fedvm-test'
}

/** The kernel package `linux-image-amd64` points at (e.g. linux-image-6.1.0-56-amd64). */
async function kernelPackage (): Promise<string> {
  const depends = async (): Promise<string | undefined> => {
    const { stdout } = await run('apt-cache', ['depends', 'linux-image-amd64'])
    return /Depends: (linux-image-[^\s]+)/.exec(stdout)?.[1]
  }
  let pkg = await depends().catch(() => undefined)
  if (pkg === undefined) {
    await run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update', '-qq'])
    pkg = await depends()
  }
  if (pkg === undefined) throw new Error('cannot find the kernel package linux-image-amd64 depends on (apt-cache depends linux-image-amd64)')
  return pkg
}

export async function ensureGuestImage (root = cacheRoot()): Promise<GuestImage> {
  const pkg = await kernelPackage()
  const key = createHash('sha256').update(pkg).update(GUEST_INIT).update(MODULES.join(',')).digest('hex').slice(0, 12)
  const dir = join(root, `guest-${key}`)
  const done = await readFile(join(dir, 'kernel-version'), 'utf8').catch(() => undefined)
  if (done !== undefined) return { kernel: join(dir, 'vmlinux'), initramfs: join(dir, 'initramfs.cpio'), kernelVersion: done.trim(), dir }

  await mkdir(root, { recursive: true })
  const work = await mkdtemp(join(root, 'building-'))
  try {
    await run('apt-get', ['download', pkg], { cwd: work, maxBuffer: 1 << 24 })
    const deb = (await readdir(work)).find(f => f.endsWith('.deb'))
    if (deb === undefined) throw new Error(`apt-get download ${pkg} left no .deb in ${work}`)
    const tree = join(work, 'tree')
    await run('dpkg', ['-x', join(work, deb), tree])
    const kver = (await readdir(join(tree, 'lib', 'modules')))[0]
    await run('depmod', ['-b', tree, kver])
    const out = join(work, 'out')
    await mkdir(out)
    await extractVmlinux(join(tree, 'boot', `vmlinuz-${kver}`), join(out, 'vmlinux'))
    await buildInitramfs(tree, kver, join(work, 'initramfs'), join(out, 'initramfs.cpio'))
    await writeFile(join(out, 'kernel-version'), `${kver}\n`)
    await rename(out, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another test process finished the same image first: use theirs.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
    })
    return { kernel: join(dir, 'vmlinux'), initramfs: join(dir, 'initramfs.cpio'), kernelVersion: kver, dir }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** vmlinuz carries the kernel as an XZ stream after the boot stub: decompress from its magic bytes. */
async function extractVmlinux (vmlinuz: string, out: string): Promise<void> {
  const image = await readFile(vmlinuz)
  const at = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
  if (at < 0) throw new Error(`${vmlinuz} holds no XZ stream`)
  const xzPart = `${out}.xz`
  await writeFile(xzPart, image.subarray(at))
  // The stream is followed by padding, hence --single-stream; stdout to a file.
  await run('sh', ['-c', 'xz -dc --single-stream "$1" > "$2"', 'sh', xzPart, out], { maxBuffer: 1 << 20 })
  await rm(xzPart)
  const head = (await readFile(out)).subarray(0, 4)
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new Error(`${out} is not an ELF kernel`)
}

async function buildInitramfs (tree: string, kver: string, staging: string, out: string): Promise<void> {
  for (const d of ['bin', 'lib/modules', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(staging, d), { recursive: true })
  await copyFile('/bin/busybox', join(staging, 'bin', 'busybox'))
  const order: string[] = []
  for (const m of MODULES) {
    const { stdout } = await run('modprobe', ['-d', tree, '-S', kver, '--show-depends', m])
    for (const line of stdout.split('\n')) {
      const path = /^insmod (\S+)/.exec(line)?.[1]
      if (path === undefined) continue
      const file = path.split('/').pop() as string
      if (order.includes(file)) continue
      order.push(file)
      await copyFile(path, join(staging, 'lib', 'modules', file))
    }
  }
  await writeFile(join(staging, 'lib', 'modules', 'order'), order.join('\n') + '\n')
  await writeFile(join(staging, 'init'), GUEST_INIT)
  await chmod(join(staging, 'init'), 0o755)
  await run('sh', ['-c', 'cd "$1" && find . | cpio -o -H newc --quiet > "$2"', 'sh', staging, out])
  if ((await stat(out)).size < 1024 * 1024) throw new Error(`${out} is too small to hold busybox`)
}
