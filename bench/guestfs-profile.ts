// bench/guestfs-profile: where guestfs's CPU goes per close(), at a steady rate (default 1,000 writes/s
// from the C writer of bench/guestfs, no feed). Three views of the same run:
// - per thread (/proc/PID/task): the JS main thread against fuse-native's and libfuse's threads and V8's
//   helpers;
// - the main thread's JS profile (node --cpu-prof), self time grouped: guestfs's own code, SQLite
//   (better-sqlite3's wrappers, whose self time includes the native SQLite work they call), fuse-native
//   (its JS, and processTicksAndRejections, which runs fuse-native's answers: one process.nextTick per
//   operation calling into native code, whose uv_sem_post, a futex wake of libfuse's thread, is
//   counted as its self time), GC, other Node internals, and "(program)" (native code with
//   no JS on the stack: the event loop, uv_async wake-ups from the FUSE thread);
// - system calls per close (strace -c -f), when strace is installed.
// Usage: node dist/bench/guestfs-profile.js [--seconds 8] [--rate 1000]   (writes bench/results/guestfs-profile.json)
import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'

const run = promisify(execFile)
const REPO = join(__dirname, '..', '..')
const FEDVM = join(REPO, 'dist', 'packaging', 'bin', 'fedvm.js')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface ProfileNode { id: number, callFrame: { functionName: string, url: string } }
interface CpuProfile { nodes: ProfileNode[], samples: number[] }

async function threadTicks (pid: number): Promise<Map<string, number>> {
  const ticks = new Map<string, number>()
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks.set(tid, Number(fields[11]) + Number(fields[12]))
    } catch {
      // the thread ended between readdir and read
    }
  }
  return ticks
}

function category (node: ProfileNode): string {
  const { functionName, url } = node.callFrame
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'gc'
  if (functionName === '(program)') return 'program (native, no JS on the stack)'
  if (url.includes('fuse-native') || functionName === 'processTicksAndRejections') return 'fuse-native (JS and its nextTick answers into native code)'
  if (url.includes('better-sqlite3')) return 'sqlite (better-sqlite3 and the native work it calls)'
  if (url.includes('/guestfs/')) return 'guestfs JS'
  return 'other node internals'
}

interface Started { pid: number, stop: () => Promise<void> }

async function startGuestfs (nodeArgs: string[], mountpoint: string, dbFile: string): Promise<Started> {
  const guestfs = spawn(process.execPath, [...nodeArgs, FEDVM, 'guestfs', 'mount', mountpoint, '--db', dbFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  guestfs.stderr.setEncoding('utf8').on('data', (chunk: string) => { log += chunk })
  const exited = new Promise((resolve) => guestfs.once('exit', resolve))
  const deadline = Date.now() + 15000
  while (!log.includes('guestfs: mounted')) {
    if (Date.now() > deadline || guestfs.exitCode !== null) {
      guestfs.kill('SIGKILL')
      throw new Error(`guestfs did not mount: ${log}`)
    }
    await sleep(50)
  }
  return { pid: guestfs.pid!, stop: async () => { guestfs.kill('SIGTERM'); await exited } }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, rate: { type: 'string', default: '1000' } } })
  const seconds = Number(values.seconds)
  const work = await mkdtemp(join(REPO, '.bench-guestfs-profile-'))
  const loadBefore = loadavg()
  const mountpoint = join(work, 'kpi')
  try {
    const writer = join(work, 'guestfs-writer')
    await run('cc', ['-O2', '-o', writer, join(REPO, 'bench', 'guestfs-writer.c')])
    const write = async () => {
      const { stdout } = await run(writer, [join(mountpoint, 'unencrypted', 'profiled'), String(seconds * 1000), '0', String(values.rate)])
      return (JSON.parse(stdout) as { closes: number }).closes
    }

    // Pass 1: CPU per thread (real CPU time) and the main thread's JS profile.
    const profiles = join(work, 'profiles')
    const profiled = await startGuestfs(['--cpu-prof', `--cpu-prof-dir=${profiles}`], mountpoint, join(work, 'kpi.db'))
    const before = await threadTicks(profiled.pid)
    const closes = await write()
    const after = await threadTicks(profiled.pid)
    await profiled.stop()
    const perClose = (ticks: number) => +(ticks * 10_000 / closes).toFixed(1) // a tick is 10 ms; in µs per close
    const threads = [...after].map(([tid, ticks]) => ({ thread: tid === String(profiled.pid) ? 'main (JS)' : tid, usPerClose: perClose(ticks - (before.get(tid) ?? 0)) }))
      .filter((t) => t.usPerClose > 0).sort((a, b) => b.usPerClose - a.usPerClose)
    const total = +threads.reduce((sum, t) => sum + t.usPerClose, 0).toFixed(1)

    // The profile's sample intervals are wall time (a busy machine inflates them): shares of the main
    // thread's non-idle samples, not microseconds.
    const [file] = (await readdir(profiles)).filter((name) => name.endsWith('.cpuprofile')).sort()
    const profile = JSON.parse(await readFile(join(profiles, file), 'utf8')) as CpuProfile
    const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
    const self = new Map<string, number>()
    profile.samples.forEach((id) => {
      const key = category(byNode.get(id)!)
      if (key !== 'idle') self.set(key, (self.get(key) ?? 0) + 1)
    })
    const busy = [...self.values()].reduce((sum, n) => sum + n, 0)
    const mainThreadShares = Object.fromEntries([...self].sort((a, b) => b[1] - a[1]).map(([key, n]) => [key, `${(100 * n / busy).toFixed(1)} %`]))

    // Pass 2: system calls per close (strace slows every call, so it runs on its own).
    let syscalls: Record<string, number> | undefined
    if (await run('which', ['strace']).then(() => true, () => false)) {
      const traced = await startGuestfs([], mountpoint, join(work, 'kpi2.db'))
      const tracer = spawn('strace', ['-f', '-c', '-p', String(traced.pid), '-o', join(work, 'strace.txt')], { stdio: 'ignore' })
      await sleep(1000)
      const tracedCloses = await write()
      tracer.kill('SIGINT')
      await new Promise((resolve) => tracer.once('exit', resolve))
      await traced.stop()
      syscalls = {}
      for (const line of (await readFile(join(work, 'strace.txt'), 'utf8')).split('\n')) {
        const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line)
        if (m && m[2] !== 'total' && Number(m[1]) / tracedCloses >= 0.05) syscalls[m[2]] = +(Number(m[1]) / tracedCloses).toFixed(2)
      }
    }
    const report = {
      seconds,
      rate: Number(values.rate),
      closes,
      cpuUsPerClose: { total, threads },
      mainThreadProfileShares: mainThreadShares,
      syscallsPerClose: syscalls,
      loadAverage: { before: loadBefore.map((l) => +l.toFixed(2)), after: loadavg().map((l) => +l.toFixed(2)) },
    }
    console.log(JSON.stringify(report, null, 2))
    await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
    await writeFile(join(REPO, 'bench', 'results', 'guestfs-profile.json'), JSON.stringify(report, null, 2) + '\n')
  } finally {
    await run('fusermount', ['-uz', mountpoint]).catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
