import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { startGuestfsProcess } from '../../guestfs/guestfs-process'

const sh = promisify(execFile)

/** What an application would do: plain shell redirection into the mount. */
const APPLICATION = `
set -e
cd "$1"
printf 'current_users,load\\n17,0.42\\n' > unencrypted/users
printf 'current_users,load\\n23,0.57\\n' > unencrypted/users
echo 200,OK > unencrypted/http
printf 'p99_ms\\n12.5\\n' > unencrypted/latency.tmp && mv unencrypted/latency.tmp unencrypted/latency
printf 'a\\nb\\nc\\n' | tee unencrypted/broken >/dev/null 2>"$2/refusal" || echo "a three-line file is refused at close(): $(cat "$2/refusal")"
ls -l unencrypted
`

/** `fedvm demo`: mounts guestfs on a temporary directory, writes KPIs like an app, prints the rows, unmounts. */
export async function run (): Promise<number> {
  const workdir = await mkdtemp(join(tmpdir(), 'fedvm-demo-'))
  const mountpoint = join(workdir, 'kpi')
  const dbFile = join(workdir, 'kpi.db')
  const guestfs = await startGuestfsProcess(mountpoint, dbFile)
  try {
    process.stdout.write(`guestfs mounted on ${mountpoint}; an application writes KPIs:\n`)
    const { stdout } = await sh('bash', ['-c', APPLICATION, 'app', mountpoint, workdir])
    process.stdout.write(stdout)
  } finally {
    await guestfs.stop()
  }
  printRows(dbFile)
  await rm(workdir, { recursive: true, force: true })
  return 0
}

function printRows (dbFile: string): void {
  const db = new Database(dbFile, { readonly: true })
  try {
    const tables = db.prepare("SELECT name FROM _fedvm_files ORDER BY name").pluck().all() as string[]
    for (const table of tables) {
      const rows = db.prepare(`SELECT * FROM "${table.replace(/"/g, '""')}" ORDER BY rowid`).all() as Record<string, unknown>[]
      process.stdout.write(`\nSQLite table "${table}":\n`)
      console.table(rows.map((row) => ({ ...row, ts: new Date(Number(row.ts)).toISOString() })))
    }
  } finally {
    db.close()
  }
}
