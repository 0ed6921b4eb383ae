import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { Agent } from '../../agent/agent'
import { startGuestfsProcess } from '../../guestfs/guestfs-process'
import { writeSealKeyPair } from '../../protocol/crypto/key-files'

const sh = promisify(execFile)

/** What an application would do: plain shell redirection into the mount. */
const APPLICATION = `
set -e
cd "$1"
for users in 17 23 20 31; do printf 'current_users,load\\n%s,0.%s\\n' $users $users > unencrypted/users; done
echo 200,OK > unencrypted/http
printf 'p99_ms\\n12.5\\n' > unencrypted/latency.tmp && mv unencrypted/latency.tmp unencrypted/latency
printf 'a\\nb\\nc\\n' | tee unencrypted/broken >/dev/null 2>"$2/refusal" || echo "a three-line file is refused at close(): $(cat "$2/refusal")"
ls -l unencrypted
`

/**
 * `fedvm demo`: guestfs on a temporary directory with its KPI feed, the host agent following it,
 * an application writing KPIs with the shell; then the SQLite rows, the agent's /metrics and the
 * deliveries a push consumer received. Everything runs on loopback and is removed at the end.
 */
export async function run (): Promise<void> {
  const workdir = await mkdtemp(join(tmpdir(), 'fedvm-demo-'))
  const mountpoint = join(workdir, 'kpi')
  const dbFile = join(workdir, 'kpi.db')
  const feed = join(workdir, 'feed.sock')
  const received: unknown[] = []
  const receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => { body += chunk })
    req.on('end', () => { received.push(...[JSON.parse(body)].flat()); res.end() })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  const guestfs = await startGuestfsProcess(mountpoint, dbFile, ['--feed', `unix:${feed}`])
  let agent: Agent | undefined
  try {
    agent = await Agent.start(await writeAgentConfig(workdir, (receiver.address() as AddressInfo).port), () => {})
    process.stdout.write(`guestfs mounted on ${mountpoint}; an application writes KPIs:\n`)
    const { stdout } = await sh('bash', ['-c', APPLICATION, 'app', mountpoint, workdir])
    process.stdout.write(stdout)
    await new Promise((resolve) => setTimeout(resolve, 1500)) // one delivery interval
    const metrics = await (await fetch(agent.metricsUrl)).text()
    process.stdout.write(`\nThe agent's ${agent.metricsUrl} (KPI lines):\n`)
    process.stdout.write(metrics.split('\n').filter((line) => /^fedvm_kpi(_processed)?\{/.test(line)).join('\n') + '\n')
    process.stdout.write('\nDeliveries a push consumer received:\n')
    for (const delivery of received) process.stdout.write(`  ${JSON.stringify(delivery)}\n`)
  } finally {
    await agent?.stop()
    await guestfs.stop()
    receiver.close()
  }
  printRows(dbFile)
  await rm(workdir, { recursive: true, force: true })
}

/** The embedded defaults: one VM whose descriptor asks for every users count and their median each second. */
async function writeAgentConfig (workdir: string, receiverPort: number): Promise<string> {
  const publicKey = await writeSealKeyPair(join(workdir, 'primary-site-keys'))
  const descriptor = {
    id: 'demo-vm',
    primarySite: { id: 'site-a', publicKey },
    monitoring: [
      { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
      { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 1000, format: 'processed', function: 'median' },
    ],
  }
  const config = {
    listen: '127.0.0.1:0',
    stateDir: join(workdir, 'agent-state'),
    vms: [{ name: 'demo-vm', descriptor: join(workdir, 'descriptor.json'), feed: `unix:${join(workdir, 'feed.sock')}` }],
    consumers: [{ type: 'http', url: `http://127.0.0.1:${receiverPort}/ingest` }],
  }
  await writeFile(join(workdir, 'descriptor.json'), JSON.stringify(descriptor, null, 2))
  await writeFile(join(workdir, 'agent.json'), JSON.stringify(config, null, 2))
  return join(workdir, 'agent.json')
}

function printRows (dbFile: string): void {
  const db = new Database(dbFile, { readonly: true })
  try {
    const tables = db.prepare('SELECT name FROM _fedvm_files ORDER BY name').pluck().all() as string[]
    for (const table of tables) {
      const rows = db.prepare(`SELECT * FROM "${table.replace(/"/g, '""')}" ORDER BY rowid`).all() as Record<string, unknown>[]
      process.stdout.write(`\nSQLite table "${table}":\n`)
      console.table(rows.map((row) => ({ ...row, ts: new Date(Number(row.ts)).toISOString() })))
    }
  } finally {
    db.close()
  }
}
