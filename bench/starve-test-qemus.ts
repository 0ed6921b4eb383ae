// bench/starve-test-qemus: starves the QEMUs of the libvirt test hosts (test/support/vm/libvirt-host.ts)
// that test processes running in one folder own, until SIGINT/SIGTERM: e.g. the live-ownership e2e test
// run from this worktree, with only its QEMUs held to a CPU quota while the machine stays quiet. Hosts of
// test processes started elsewhere (other worktrees) are left alone. Not part of the test suite.
// Usage: node dist/bench/starve-test-qemus.js [--quota-pct 30] [--owner-cwd DIR (default: the current folder)]
import { readdir, readFile, readlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { qemuPidFiles, QemuStarver } from './support/qemu-starver'

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { 'quota-pct': { type: 'string', default: '30' }, 'owner-cwd': { type: 'string', default: process.cwd() } } })
  const cwd = resolve(values['owner-cwd'])
  const pidFiles = async (): Promise<string[]> => {
    const files: string[] = []
    for (const entry of await readdir(tmpdir())) {
      if (!entry.startsWith('fedvm-libvirt-')) continue
      const dir = join(tmpdir(), entry)
      const owner = await readFile(join(dir, 'owner.json'), 'utf8').then((text) => (JSON.parse(text) as { pid: number }).pid, () => undefined)
      if (owner === undefined || await readlink(`/proc/${owner}/cwd`).catch(() => undefined) !== cwd) continue
      files.push(...await qemuPidFiles(dir))
    }
    return files
  }
  const starver = await QemuStarver.start(`tests-${process.pid}`, Number(values['quota-pct']), pidFiles)
  console.error(`starving the QEMUs of libvirt test hosts owned from ${cwd} at ${values['quota-pct']} % of one CPU (${starver.dir})`)
  const stop = async (): Promise<void> => {
    const stats = await starver.stats()
    await starver.stop()
    console.log(JSON.stringify({ quotaPercent: Number(values['quota-pct']), qemusStarved: starver.starved, throttling: stats }))
    process.exit(0)
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void stop() })
}

main().catch((err) => { console.error(err); process.exit(1) })
