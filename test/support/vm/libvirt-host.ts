/**
 * A private libvirt "host" for tests: its own network namespace (with bridge br0 at 192.0.2.1/24,
 * traffic never leaves it), its own mount namespace in which libvirt's /run, /var/lib, /var/log,
 * /var/cache and /etc folders are bind-mounted from a temp folder, and its own libvirtd + virtlogd
 * started as root without systemd. Several can run at once (the migration tests need two); the
 * sockets are reachable from the test process at `socketPath` / `readOnlySocketPath`.
 *
 * `stop()` destroys and undefines every domain, stops the daemons and any QEMU left by PID,
 * deletes the namespace and the folder. Register it with t.teardown right after start.
 */
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Teardownable } from '../teardownable'
import { cacheRoot } from './guest-image'

const run = promisify(execFile)

export interface LibvirtHostOptions {
  /** Short tag used in the namespace, bridge and domain names. Default: random. */
  tag?: string
  /** Address of br0 inside the namespace, CIDR. Default 192.0.2.1/24 (documentation range). */
  bridgeAddress?: string
  /** How long to wait for libvirtd's first answer (it sets up its drivers first: ~4-12 s). */
  readyTimeoutMs?: number
  /**
   * Run in this existing network namespace (`ip netns add NAME`, owned by the caller) instead of a
   * new one with br0: e.g. a site's namespace, shared with its site daemon and agent. Left in place by stop().
   */
  netns?: string
}

const LIBVIRTD_CONF = `unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0777"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
`
/**
 * FEDVM_LIBVIRT_DEBUG_LOG=1 logs qemu, migration, close callbacks and the RPC server at debug: who stopped a
 * domain and why. FEDVM_KEEP_LIBVIRT_LOGS=DIR keeps each host's log folder (libvirtd.log, qemu/DOMAIN.log
 * with QEMU's stderr, virtlogd.log) there when it stops.
 */
const DEBUG_LOG = `log_filters = "1:qemu.qemu_monitor 1:qemu.qemu_migration 1:qemu.qemu_process 1:qemu.qemu_driver 1:qemu.qemu_domain 1:hypervisor.domain_job 1:util.closecallbacks 1:hypervisor.virclosecallbacks 1:rpc.virnetserverclient 1:daemon.remote 3:util 3:rpc 3:conf 3:object 3:event"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
`
// QEMU runs as root with no security driver and no private /dev: the test images live in
// temp and cache folders, and this container has neither AppArmor nor device cgroups for it.
const QEMU_CONF = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
`
const VIRTLOGD_CONF = 'log_outputs = "3:file:/var/log/libvirt/virtlogd.log"\n'

const DIR_PREFIX = 'fedvm-libvirt-'
/** Who started a host, so a later run can stop it when that process died before its teardown. */
const OWNER_FILE = 'owner.json'
interface HostOwner { pid: number, tag: string, netns: string, ownsNetns: boolean }

let reaped: Promise<void> | undefined
async function reapOrphansOnce (): Promise<void> {
  reaped ??= LibvirtHost.reapOrphans()
  await reaped
}

const BINDS: Array<[string, string]> = [
  ['run', '/run/libvirt'], ['lib', '/var/lib/libvirt'], ['log', '/var/log/libvirt'], ['cache', '/var/cache/libvirt'], ['etc', '/etc/libvirt']
]

export class LibvirtHost {
  private stopped = false

  private constructor (
    readonly tag: string,
    readonly netns: string,
    readonly dir: string,
    private readonly ownsNetns = true
  ) {}

  get socketPath (): string { return join(this.dir, 'run', 'libvirt-sock') }
  get readOnlySocketPath (): string { return join(this.dir, 'run', 'libvirt-sock-ro') }
  get uri (): string { return `qemu+unix:///system?socket=${this.socketPath}` }

  static async start (options: LibvirtHostOptions = {}): Promise<LibvirtHost> {
    await reapOrphansOnce()
    const tag = options.tag ?? randomBytes(3).toString('hex')
    const netns = options.netns ?? `fedvm-${tag}`
    const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${tag}-`))
    const host = new LibvirtHost(tag, netns, dir, options.netns === undefined)
    await writeFile(join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, tag, netns, ownsNetns: host.ownsNetns }))
    try {
      if (host.ownsNetns) await host.createNetwork(options.bridgeAddress ?? '192.0.2.1/24')
      await host.startDaemons()
      await host.waitReady(options.readyTimeoutMs ?? 60_000)
      return host
    } catch (err) {
      await host.stop().catch(() => {})
      throw err
    }
  }

  /**
   * Starts one host per options object at once; each that started is stopped at t's teardown,
   * also when another failed to start (then the first failure is thrown).
   */
  static async startAll (t: Teardownable, all: LibvirtHostOptions[]): Promise<LibvirtHost[]> {
    const starts = await Promise.allSettled(all.map(async (options) => await LibvirtHost.start(options)))
    for (const s of starts) if (s.status === 'fulfilled') t.teardown(async () => await s.value.stop())
    for (const s of starts) if (s.status === 'rejected') throw s.reason
    return starts.map((s) => (s as PromiseFulfilledResult<LibvirtHost>).value)
  }

  /**
   * Stops the hosts of test processes that died before their teardown ran (SIGKILLed, or ended
   * by tap's per-file timeout): their daemons, QEMUs and namespaces would otherwise live on.
   * A host whose owner still runs (a test file in parallel) is left alone.
   */
  static async reapOrphans (): Promise<void> {
    for (const entry of await readdir(tmpdir()).catch(() => [] as string[])) {
      if (!entry.startsWith(DIR_PREFIX)) continue
      const dir = join(tmpdir(), entry)
      const owner = await readFile(join(dir, OWNER_FILE), 'utf8').then((text) => JSON.parse(text) as HostOwner, () => undefined)
      if (owner === undefined || alive(owner.pid)) continue
      await new LibvirtHost(owner.tag, owner.netns, dir, owner.ownsNetns).stop().catch(() => {})
    }
  }

  /** Runs virsh against this host; rejects with virsh's stderr on failure. */
  async virsh (...args: string[]): Promise<string> {
    try {
      const { stdout } = await run('virsh', ['-c', this.uri, ...args], { maxBuffer: 1 << 24 })
      return stdout
    } catch (err) {
      const e = err as { stderr?: string, message: string }
      throw new Error(`virsh ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err })
    }
  }

  /** The PID of a running domain's QEMU, from libvirt's pid file. */
  async qemuPid (domain: string): Promise<number> {
    return Number((await readFile(join(this.dir, 'run', 'qemu', `${domain}.pid`), 'utf8')).trim())
  }

  /** Runs a command inside the host's network namespace (e.g. ping the guest). */
  async inNetns (command: string, args: string[]): Promise<string> {
    const { stdout } = await run('nsenter', [`--net=/run/netns/${this.netns}`, command, ...args])
    return stdout
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    const errors: unknown[] = []
    const attempt = async (fn: () => Promise<unknown>): Promise<void> => { try { await fn() } catch (err) { errors.push(err) } }
    if (existsSync(this.socketPath)) {
      await attempt(async () => {
        const names = (await this.virsh('list', '--all', '--name')).split('\n').map(s => s.trim()).filter(Boolean)
        for (const name of names) {
          await this.virsh('destroy', name).catch(() => {})
          await this.virsh('undefine', name, '--nvram').catch(async () => await this.virsh('undefine', name))
        }
      })
    }
    // QEMU outlives libvirtd by design: stop any left by its pid file, then the daemons.
    await attempt(async () => {
      const qemuDir = join(this.dir, 'run', 'qemu')
      const pids = existsSync(qemuDir) ? (await readdir(qemuDir)).filter(f => f.endsWith('.pid')) : []
      for (const f of pids) await killPidFile(join(qemuDir, f))
    })
    await attempt(async () => await killPidFile(join(this.dir, 'run', 'libvirtd.pid')))
    await attempt(async () => await killPidFile(join(this.dir, 'run', 'virtlogd.pid')))
    if (this.ownsNetns) await attempt(async () => await run('ip', ['netns', 'del', this.netns]))
    const keep = process.env.FEDVM_KEEP_LIBVIRT_LOGS
    if (keep !== undefined && keep !== '') await attempt(async () => await run('cp', ['-a', join(this.dir, 'log'), join(keep, `${this.tag}-${Date.now()}`)]))
    await attempt(async () => await rm(this.dir, { recursive: true, force: true }))
    if (errors.length > 0) throw new AggregateError(errors, `stopping libvirt host ${this.tag}`)
  }

  /**
   * Stops libvirtd (SIGTERM, by PID) and starts it again in the same namespaces, as an upgrade or
   * a crash-and-restart would; running QEMU processes stay, libvirtd reconnects to them.
   */
  async restartLibvirtd (): Promise<void> {
    await killPidFile(join(this.dir, 'run', 'libvirtd.pid'))
    const virtlogd = Number((await readFile(join(this.dir, 'run', 'virtlogd.pid'), 'utf8')).trim())
    await run('nsenter', [`--net=/run/netns/${this.netns}`, `--mount=/proc/${virtlogd}/ns/mnt`, 'libvirtd', '-d', '-p', '/run/libvirt/libvirtd.pid'])
    await this.waitReady(60_000)
  }

  /** libvirtd.log, for a failing test's diagnostics. */
  async daemonLog (): Promise<string> {
    return await readFile(join(this.dir, 'log', 'libvirtd.log'), 'utf8').catch(() => '')
  }

  private async createNetwork (cidr: string): Promise<void> {
    await run('ip', ['netns', 'add', this.netns])
    const ipn = async (...args: string[]): Promise<unknown> => await run('ip', ['-n', this.netns, ...args])
    await ipn('link', 'set', 'lo', 'up')
    await ipn('link', 'add', 'br0', 'type', 'bridge')
    await ipn('addr', 'add', cidr, 'dev', 'br0')
    await ipn('link', 'set', 'br0', 'up')
  }

  private async startDaemons (): Promise<void> {
    for (const [sub] of BINDS) await mkdir(join(this.dir, sub), { recursive: true })
    await mkdir(join(this.dir, 'etc', 'qemu'), { recursive: true })
    await writeFile(join(this.dir, 'etc', 'libvirtd.conf'), process.env.FEDVM_LIBVIRT_DEBUG_LOG === '1' ? LIBVIRTD_CONF.replace(/^log_outputs.*\n/m, DEBUG_LOG) : LIBVIRTD_CONF)
    await writeFile(join(this.dir, 'etc', 'qemu.conf'), QEMU_CONF)
    await writeFile(join(this.dir, 'etc', 'virtlogd.conf'), VIRTLOGD_CONF)
    await seedCapabilitiesCache(join(this.dir, 'cache'))
    const binds = BINDS.map(([sub, target]) => `mkdir -p ${target} && mount --bind ${join(this.dir, sub)} ${target}`).join(' && ')
    // nsenter --net keeps the host's /sys (cgroups: cpu stats); `ip netns exec` would remount it.
    const script = `${binds} && virtlogd -d -p /run/libvirt/virtlogd.pid && libvirtd -d -p /run/libvirt/libvirtd.pid`
    await new Promise<void>((resolve, reject) => {
      const child = spawn('nsenter', [`--net=/run/netns/${this.netns}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-ec', script], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      child.once('error', reject)
      child.once('close', code => code === 0 ? resolve() : reject(new Error(`starting libvirtd in ${this.netns} failed (${String(code)}): ${stderr.trim()}`)))
    })
  }

  private async waitReady (timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs
    let last: unknown
    while (Date.now() < until) {
      try {
        await this.virsh('version')
        await saveCapabilitiesCache(join(this.dir, 'cache'))
        return
      } catch (err) {
        last = err
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    }
    throw new Error(`libvirtd in ${this.netns} did not answer within ${timeoutMs} ms: ${(last as Error)?.message}\n${(await this.daemonLog()).slice(-2000)}`)
  }
}

/**
 * libvirtd probes QEMU's capabilities at start (seconds under TCG) and caches the answer; the
 * harness keeps one copy in the VM cache so the next host starts faster. libvirt checks the
 * cache against QEMU's binary itself and probes again when it changed.
 */
async function seedCapabilitiesCache (cacheDir: string): Promise<void> {
  const saved = join(cacheRoot(), 'libvirt-qemu-capabilities')
  if (!existsSync(saved)) return
  await run('cp', ['-a', saved, join(cacheDir, 'qemu-capabilities-seed')]).catch(() => {})
  await mkdir(join(cacheDir, 'qemu'), { recursive: true })
  await run('sh', ['-c', 'mv "$1" "$2"', 'sh', join(cacheDir, 'qemu-capabilities-seed'), join(cacheDir, 'qemu', 'capabilities')]).catch(() => {})
}

async function saveCapabilitiesCache (cacheDir: string): Promise<void> {
  const saved = join(cacheRoot(), 'libvirt-qemu-capabilities')
  const fresh = join(cacheDir, 'qemu', 'capabilities')
  if (existsSync(saved) || !existsSync(fresh)) return
  await mkdir(cacheRoot(), { recursive: true })
  const tmp = `${saved}.${process.pid}`
  await run('cp', ['-a', fresh, tmp]).catch(() => {})
  await run('mv', ['-T', tmp, saved]).catch(async () => await rm(tmp, { recursive: true, force: true }))
}

/** SIGTERM the process named in a pid file, SIGKILL after 5 s; a stale or missing file is fine. */
async function killPidFile (file: string): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  if (!Number.isInteger(pid) || pid <= 1) return
  if (!alive(pid)) return
  process.kill(pid, 'SIGTERM')
  const until = Date.now() + 5000
  while (alive(pid) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
  if (alive(pid)) process.kill(pid, 'SIGKILL')
}

/** Running, or stopped; a zombie (exited, not yet reaped by its parent) counts as gone. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false // ESRCH: no such process
  }
  const stat = readFileSyncOrEmpty(`/proc/${pid}/stat`)
  return !/^\d+ \(.*\) Z/.test(stat)
}

function readFileSyncOrEmpty (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return '' // the process went away between the two looks
  }
}
