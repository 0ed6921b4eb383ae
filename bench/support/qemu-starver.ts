/**
 * Starves chosen QEMU processes of CPU without loading the machine: a cgroup v1 cpu child with a CFS
 * quota (e.g. 30 % of one CPU) that every thread of those QEMUs is moved into. QEMUs come and go during
 * a migration (the Destination's is started by Prepare, vCPU threads appear later and libvirt moves
 * them into its own machine cgroup), so the starver looks again every `intervalMs` and moves whatever
 * thread is not in it yet. Only the QEMUs named by the caller's pid files are touched.
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const CPU_ROOT = '/sys/fs/cgroup/cpu'
const PERIOD_US = 100_000

export class QemuStarver {
  private timer: NodeJS.Timeout | undefined
  private scanning: Promise<void> = Promise.resolve()
  private readonly seen = new Set<number>()

  private constructor (readonly dir: string, readonly quotaPercent: number, private readonly pidFiles: () => Promise<string[]>) {}

  /**
   * Creates the cgroup `fedvm-starve-NAME` and starts moving the QEMUs whose pid files `pidFiles`
   * lists into it. `quotaPercent`: the share of one CPU all of them together may use.
   */
  static async start (name: string, quotaPercent: number, pidFiles: () => Promise<string[]>, intervalMs = 50): Promise<QemuStarver> {
    if (!(quotaPercent > 0 && quotaPercent <= 200)) throw new Error(`quotaPercent ${quotaPercent}: must be in (0, 200]`)
    if (!existsSync(join(CPU_ROOT, 'tasks'))) throw new Error(`${CPU_ROOT}: no cgroup v1 cpu controller mounted there`)
    const dir = join(CPU_ROOT, `fedvm-starve-${name}`)
    await mkdir(dir)
    await writeFile(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US))
    await writeFile(join(dir, 'cpu.cfs_quota_us'), String(Math.round(PERIOD_US * quotaPercent / 100)))
    const starver = new QemuStarver(dir, quotaPercent, pidFiles)
    starver.timer = setInterval(() => { starver.scanning = starver.scanning.then(async () => await starver.scan()) }, intervalMs)
    return starver
  }

  /** How many distinct QEMU processes were starved so far. */
  get starved (): number { return this.seen.size }

  /** The cgroup's throttling counters (cpu.stat): how often and how long the quota held QEMU back. */
  async stats (): Promise<{ periods: number, throttled: number, throttledMs: number }> {
    const text = await readFile(join(this.dir, 'cpu.stat'), 'utf8')
    const field = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN)
    return { periods: field('nr_periods'), throttled: field('nr_throttled'), throttledMs: Math.round(field('throttled_time') / 1e6) }
  }

  /** Stops scanning, hands the threads back to the root cgroup and removes the child. */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    await this.scanning
    if (!existsSync(this.dir)) return
    const tids = (await readFile(join(this.dir, 'tasks'), 'utf8')).split('\n').filter(Boolean)
    for (const tid of tids) await writeFile(join(CPU_ROOT, 'tasks'), tid).catch(() => {}) // a thread that ended meanwhile
    await rmdir(this.dir)
  }

  private async scan (): Promise<void> {
    for (const file of await this.pidFiles().catch(() => [] as string[])) {
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      if (!Number.isSafeInteger(pid) || pid <= 0) continue
      const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[])
      if (tids.length > 0) this.seen.add(pid)
      for (const tid of tids) {
        const cgroup = await readFile(`/proc/${pid}/task/${tid}/cgroup`, 'utf8').catch(() => '')
        if (cgroup.includes(`:cpu:/${this.dir.slice(CPU_ROOT.length + 1)}\n`)) continue
        await writeFile(join(this.dir, 'tasks'), tid).catch(() => {}) // the thread ended between the listing and now
      }
    }
  }
}

/** The pid files of the QEMUs a LibvirtHost folder's libvirtd runs (`run/qemu/NAME.pid`). */
export async function qemuPidFiles (hostDir: string): Promise<string[]> {
  const dir = join(hostDir, 'run', 'qemu')
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.pid')).map((f) => join(dir, f))
}
