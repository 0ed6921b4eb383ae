/**
 * A private `sshd` (Debian openssh-server) inside a network namespace, for an `scp` baseline over the
 * same link a test's sites use: a temporary host key, key-only login with a temporary client key,
 * listening only on the given address. Stopped by PID with `stop()` (register it with t.teardown).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { inNetns } from './site-network'

const run = promisify(execFile)
const SSHD = '/usr/sbin/sshd'
const PORT = 2222

export class NetnsSshd {
  private readonly exited: Promise<void>

  private constructor (private readonly child: ChildProcess, private readonly dir: string, readonly address: string, private readonly log: () => string) {
    this.exited = new Promise((resolve) => child.once('close', () => resolve()))
  }

  static async start (netns: string, address: string, dir: string): Promise<NetnsSshd> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')])
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')])
    await run('cp', [join(dir, 'client.pub'), join(dir, 'authorized_keys')])
    await writeFile(join(dir, 'sshd_config'), [
      `ListenAddress ${address}:${PORT}`, `HostKey ${join(dir, 'host')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no', 'Subsystem sftp internal-sftp', 'PermitRootLogin prohibit-password', 'StrictModes no', `PidFile ${join(dir, 'sshd.pid')}`, 'UsePAM no', '',
    ].join('\n'))
    // sshd's privilege separation directory.
    await mkdir('/run/sshd', { recursive: true })
    const [command, args] = inNetns(netns, SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')])
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d })
    const sshd = new NetnsSshd(child, dir, address, () => stderr)
    await sshd.waitListening()
    return sshd
  }

  /** Copies `src` to `dst` on this sshd's machine with `scp` run in `fromNetns`, then syncs it there; ms taken. */
  async scp (fromNetns: string, src: string, dst: string): Promise<number> {
    const user = (await run('id', ['-un'])).stdout.trim()
    const [command, args] = inNetns(fromNetns, 'scp', ['-q', '-i', join(this.dir, 'client'), '-P', String(PORT),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', src, `${user}@${this.address}:${dst}`])
    const started = process.hrtime.bigint()
    await run(command, args, { maxBuffer: 1024 * 1024 })
    // As the Destination does: the copy counts once it is on disk.
    await run('sync', [dst])
    return Number(process.hrtime.bigint() - started) / 1e6
  }

  async stop (): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    await this.exited
  }

  private async waitListening (): Promise<void> {
    const until = Date.now() + 10_000
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`sshd exited: ${this.log()}`)
      if (this.log().includes('Server listening')) return
      if (Date.now() > until) throw new Error(`sshd did not listen on ${this.address}:${PORT}: ${this.log()}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
