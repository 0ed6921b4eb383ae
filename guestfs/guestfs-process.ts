import { spawn, type ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isFuseMounted } from './fuse/mount-table'

const run = promisify(execFile)
const FEDVM = join(__dirname, '..', 'packaging', 'bin', 'fedvm.js')

export interface GuestfsProcess {
  readonly child: ChildProcess
  /** What the process wrote to stderr so far (its log). */
  log (): string
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop (): Promise<number | null>
  /** SIGKILL, wait, and lazily unmount what it left behind (as a crash would need). */
  kill (): Promise<void>
}

/**
 * Runs `fedvm guestfs mount` as a child process (a mount must never be read synchronously from
 * the process that serves it) and resolves once the mount is in /proc/mounts. `nodeArgs`: flags
 * for its Node runtime (a benchmark passes the ones packaging sets); `node`: the runtime's binary
 * (a benchmark passes a private copy, so that no other process shares its pages).
 */
export async function startGuestfsProcess (mountpoint: string, dbFile: string, extraArgs: string[] = [], nodeArgs: string[] = [], node = process.execPath): Promise<GuestfsProcess> {
  const child = spawn(node, [...nodeArgs, FEDVM, 'guestfs', 'mount', mountpoint, '--db', dbFile, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let hasExited = false
  void exited.then(() => { hasExited = true })

  // The process says "mounted" once the kernel sent INIT; /proc/mounts alone could still list a
  // stale mount that the process is about to recover.
  const deadline = Date.now() + 15000
  while (!/^guestfs: mounted /m.test(stderr) || !(await isFuseMounted(mountpoint))) {
    if (hasExited) throw new Error(`guestfs exited before mounting: ${stderr.trim()}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`guestfs did not mount ${mountpoint} within 15 s: ${stderr.trim()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }

  return {
    child,
    log: () => stderr,
    async stop () {
      if (!hasExited) child.kill('SIGTERM')
      return exited
    },
    async kill () {
      if (!hasExited) child.kill('SIGKILL')
      await exited
      if (await isFuseMounted(mountpoint)) await run('fusermount', ['-uz', mountpoint])
    },
  }
}
