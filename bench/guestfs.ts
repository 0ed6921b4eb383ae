// bench/guestfs: closes/s and close() latency of KPI writes through a fedvm mount, against a plain
// file on tmpfs and on the disk that holds the database, all measured in the same run.
// Usage: node dist/bench/guestfs.js [--seconds N]   (writes bench/results/guestfs.json)
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import Database from 'better-sqlite3'
import { startGuestfsProcess } from '../guestfs/guestfs-process'

const run = promisify(execFile)
const WRITER = join(__dirname, 'guestfs-writer.js')
const REPO = join(__dirname, '..', '..')

interface WriterResult { closes: number, elapsedMs: number, closeP50Us: number, closeP99Us: number }
interface Figures { closesPerSecond: number, closeP50Us: number, closeP99Us: number, closes: number }

/** Runs `writers` processes at once, each on its own file in dir, and sums their closes/s. */
async function measure (dir: string, writers: number, seconds: number): Promise<Figures> {
  const results = await Promise.all(Array.from({ length: writers }, async (_, i) => {
    const { stdout } = await run(process.execPath, [WRITER, join(dir, `bench_writer_${i}`), String(seconds * 1000), String(i)])
    return JSON.parse(stdout) as WriterResult
  }))
  return {
    closesPerSecond: Math.round(results.reduce((sum, r) => sum + r.closes / (r.elapsedMs / 1000), 0)),
    // the slowest writer's percentiles: what an application would see at worst
    closeP50Us: Math.round(Math.max(...results.map((r) => r.closeP50Us))),
    closeP99Us: Math.round(Math.max(...results.map((r) => r.closeP99Us))),
    closes: results.reduce((sum, r) => sum + r.closes, 0),
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } })
  const seconds = Number(values.seconds)
  const diskDir = await mkdtemp(join(REPO, '.bench-guestfs-'))
  const tmpfsDir = await mkdtemp('/dev/shm/fedvm-bench-')
  const mountpoint = join(diskDir, 'kpi')
  const dbFile = join(diskDir, 'kpi.db')
  const plainDiskDir = join(diskDir, 'plain')
  await mkdir(plainDiskDir)
  const guestfs = await startGuestfsProcess(mountpoint, dbFile)
  const figures: Record<string, Record<string, Figures>> = { fedvm: {}, tmpfs: {}, disk: {} }
  let rows = 0
  try {
    for (const writers of [1, 4]) {
      figures.fedvm[writers] = await measure(join(mountpoint, 'unencrypted'), writers, seconds)
      figures.tmpfs[writers] = await measure(tmpfsDir, writers, seconds)
      figures.disk[writers] = await measure(plainDiskDir, writers, seconds)
    }
  } finally {
    await guestfs.stop()
    const db = new Database(dbFile, { readonly: true })
    const tables = db.prepare('SELECT name FROM _fedvm_files').pluck().all() as string[]
    rows = tables.reduce((sum, table) => sum + (db.prepare(`SELECT count(*) FROM "${table}"`).pluck().get() as number), 0)
    db.close()
    await rm(diskDir, { recursive: true, force: true })
    await rm(tmpfsDir, { recursive: true, force: true })
  }

  const closesOnFedvm = figures.fedvm[1].closes + figures.fedvm[4].closes
  const report = {
    seconds,
    figures,
    ratios: Object.fromEntries([1, 4].map((w) => [w, {
      fedvmOverTmpfs: +(figures.fedvm[w].closesPerSecond / figures.tmpfs[w].closesPerSecond).toFixed(3),
      fedvmOverDisk: +(figures.fedvm[w].closesPerSecond / figures.disk[w].closesPerSecond).toFixed(3),
    }])),
    rowsStored: rows,
    closesOnFedvm,
    targets: { closesPerSecond1: 5000, closesPerSecond4: 8000, closeP99Us: 1000, fedvmOverDisk: 1.0 },
  }
  console.log('writers  target   closes/s   close p50 µs  close p99 µs')
  for (const w of [1, 4]) {
    for (const target of ['fedvm', 'tmpfs', 'disk']) {
      const f = figures[target][w]
      console.log(`${String(w).padStart(7)}  ${target.padEnd(7)} ${String(f.closesPerSecond).padStart(9)} ${String(f.closeP50Us).padStart(13)} ${String(f.closeP99Us).padStart(13)}`)
    }
    console.log(`         ratio a/b (fedvm/tmpfs) ${report.ratios[w].fedvmOverTmpfs}   a/c (fedvm/disk) ${report.ratios[w].fedvmOverDisk}`)
  }
  console.log(`rows stored ${rows} of ${closesOnFedvm} closes on fedvm${rows === closesOnFedvm ? '' : '  MISMATCH'}`)
  await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
  await writeFile(join(REPO, 'bench', 'results', 'guestfs.json'), JSON.stringify(report, null, 2) + '\n')
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
